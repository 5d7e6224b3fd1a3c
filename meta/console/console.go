package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
)

// Cluster is what the console reads of one virtual cluster;
// *controller.Service implements it.
type Cluster interface {
	Topics(ctx context.Context, names []string) ([]meta.Topic, error)
	PartitionStates(ctx context.Context, tps []meta.TopicPartition) ([]meta.PartitionState, error)
	ListGroups(ctx context.Context) ([]meta.GroupListing, error)
	DescribeGroup(ctx context.Context, group string) (meta.GroupDescription, error)
	FetchOffsets(ctx context.Context, group string, tps []meta.TopicPartition) ([]meta.CommittedOffset, error)
	AgentStatuses(ctx context.Context) ([]controller.AgentStatus, error)
	PartitionBytes() map[meta.TopicPartition]int64
	JobsStats() controller.JobsStats
	DefaultRetention() (ms, bytes int64)
}

var _ Cluster = (*controller.Service)(nil)

// Source names the clusters to show.
type Source interface {
	// Clusters lists the clusters open now, in any order.
	Clusters() []string
	// Cluster returns an open cluster, or nil.
	Cluster(name string) Cluster
}

// Prices are what the bucket charges, in dollars. The defaults are S3
// Standard's list prices in us-east-1; the cost page edits them.
type Prices struct {
	PerThousandPuts float64 // PUT, COPY, POST, LIST
	PerThousandGets float64 // GET, HEAD
	PerGBMonth      float64 // storage
}

// DefaultPrices are S3 Standard, us-east-1.
var DefaultPrices = Prices{PerThousandPuts: 0.005, PerThousandGets: 0.0004, PerGBMonth: 0.023}

// Config configures a Console.
type Config struct {
	Source Source
	// Token is the admin token a request must carry (Authorization:
	// Bearer TOKEN, or Basic with the token as the password). Empty
	// refuses every request unless Open is set.
	Token string
	// Open serves without a token: the playground on loopback only.
	Open bool
	// SampleEvery is the charts' resolution (default 10s); Window how
	// far back they reach (default 1h). The ring holds Window/SampleEvery
	// samples per cluster, at most maxSamples.
	SampleEvery, Window time.Duration
	Prices              Prices // zero: DefaultPrices
	Logger              *slog.Logger
}

// maxSamples bounds each cluster's ring whatever SampleEvery is.
const maxSamples = 3600

// Console serves the pages and keeps the samples.
type Console struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template

	mu       sync.Mutex
	clusters map[string]*history // guarded by mu
}

//go:embed assets
var assets embed.FS

// New returns a Console; call Run to take samples.
func New(cfg Config) *Console {
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 10 * time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	if cfg.Prices == (Prices{}) {
		cfg.Prices = DefaultPrices
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"), clusters: map[string]*history{}}
	c.pages = map[string]*template.Template{}
	for _, p := range []string{"index", "overview", "topics", "groups", "agents", "jobs", "cost"} {
		c.pages[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+p+".html"))
	}
	return c
}

// Handler serves the console under /console/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/{$}", c.index)
	mux.HandleFunc("GET /console/static/{file}", c.static)
	mux.HandleFunc("GET /console/c/{cluster}/{$}", c.cluster(c.overview))
	mux.HandleFunc("GET /console/c/{cluster}/topics", c.cluster(c.topics))
	mux.HandleFunc("GET /console/c/{cluster}/groups", c.cluster(c.groups))
	mux.HandleFunc("GET /console/c/{cluster}/agents", c.cluster(c.agents))
	mux.HandleFunc("GET /console/c/{cluster}/jobs", c.cluster(c.jobs))
	mux.HandleFunc("GET /console/c/{cluster}/cost", c.cluster(c.cost))
	return c.authorize(mux)
}

// authorize refuses requests without the admin token with 401.
func (c *Console) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.cfg.Open {
			if c.cfg.Token == "" {
				http.Error(w, "the console needs the admin token, and this meta has none: start it with --admin-token or SLUICE_ADMIN_TOKEN", http.StatusUnauthorized)
				return
			}
			if !c.tokenOK(r) {
				w.Header().Set("WWW-Authenticate", `Basic realm="sluice console (any user name; the admin token as password)"`)
				http.Error(w, "the console needs the admin token (--admin-token of sluice meta): Authorization: Bearer TOKEN, or the token as the Basic password", http.StatusUnauthorized)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func (c *Console) tokenOK(r *http.Request) bool {
	var got string
	if _, pass, ok := r.BasicAuth(); ok {
		got = pass
	} else if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = b
	} else {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(c.cfg.Token)) == 1
}

func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	var ctype string
	switch f := r.PathValue("file"); f {
	case "console.css":
		ctype = "text/css; charset=utf-8"
	case "console.js":
		ctype = "text/javascript; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, err := assets.ReadFile("assets/" + r.PathValue("file"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(b)
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	Cluster  string
	Clusters []string
	Now      time.Time
	Data     any
}

func (c *Console) clusterNames() []string {
	names := c.cfg.Source.Clusters()
	sort.Strings(names)
	return names
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	names := c.clusterNames()
	if len(names) == 1 {
		http.Redirect(w, r, "/console/c/"+names[0]+"/", http.StatusFound)
		return
	}
	c.render(w, "index", page{Title: "Clusters", Clusters: names, Now: time.Now()})
}

// cluster resolves the {cluster} of the path for a page.
func (c *Console) cluster(fn func(ctx context.Context, r *http.Request, name string, cl Cluster) (string, string, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("cluster")
		cl := c.cfg.Source.Cluster(name)
		if cl == nil {
			http.Error(w, fmt.Sprintf("no open virtual cluster %q (a cluster opens when its first agent connects)", name), http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		tmpl, title, data, err := fn(ctx, r, name, cl)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, meta.ErrUnavailable) || errors.Is(err, meta.ErrClosed) {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), status)
			return
		}
		c.render(w, tmpl, page{Title: title, Nav: tmpl, Cluster: name, Clusters: c.clusterNames(), Now: time.Now(), Data: data})
	}
}

func (c *Console) render(w http.ResponseWriter, name string, p page) {
	var b strings.Builder
	if err := c.pages[name].Execute(&b, p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// Services adapts functions over controller.Services to a Source (a nil
// Service must not become a non-nil Cluster).
type Services struct {
	Names func() []string
	Get   func(name string) *controller.Service
}

// Clusters implements Source.
func (s Services) Clusters() []string { return s.Names() }

// Cluster implements Source.
func (s Services) Cluster(name string) Cluster {
	if v := s.Get(name); v != nil {
		return v
	}
	return nil
}
