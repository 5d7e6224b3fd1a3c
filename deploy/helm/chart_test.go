package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const chartDir = "sluice"

// serviceMonitor is the part of the Prometheus Operator's CRD the chart
// uses. The operator's Go types would pull its whole module in for one
// object; decoding strictly into this catches a misspelt field all the
// same, and the test checks the selector against the chart's Services.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// newObject returns the API type a manifest's apiVersion and kind decode
// into; nil for a kind the chart should not render.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

// rendered is one release's manifests, decoded.
type rendered struct {
	objs  []any
	notes string
}

func (r rendered) statefulSets() []*appsv1.StatefulSet { return ofType[*appsv1.StatefulSet](r) }
func (r rendered) deployments() []*appsv1.Deployment   { return ofType[*appsv1.Deployment](r) }
func (r rendered) services() []*corev1.Service         { return ofType[*corev1.Service](r) }

func ofType[T any](r rendered) []T {
	var out []T
	for _, o := range r.objs {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// render renders the chart as `helm template` would, with Helm's engine
// in strict mode (a template naming a value that does not exist fails).
func render(t *testing.T, vals map[string]any) (rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "sluice", Namespace: "streaming", Revision: 1, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		return rendered{}, err
	}
	var r rendered
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		if strings.HasSuffix(name, ".tpl") {
			continue
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(files[name], -1) {
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatalf("%s document %d is not YAML: %v\n%s", name, i, err, doc)
			}
			if string(js) == "null" {
				continue // a document of comments only, or empty
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(js, &tm); err != nil {
				t.Fatalf("%s document %d: %v", name, i, err)
			}
			obj := newObject(tm.APIVersion, tm.Kind)
			if obj == nil {
				t.Fatalf("%s document %d: %s %s is not a kind this chart is meant to render", name, i, tm.APIVersion, tm.Kind)
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Fatalf("%s document %d (%s): does not fit the Kubernetes schema: %v\n%s", name, i, tm.Kind, err, doc)
			}
			r.objs = append(r.objs, obj)
		}
	}
	return r, nil
}

// sluiceFlags lists the flags of `sluice SUBCOMMAND --help`, from a
// binary built from this checkout.
var (
	buildOnce sync.Once
	sluiceBin string
	buildErr  error
)

func sluiceFlags(t *testing.T, sub string) map[string]bool {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-chart-")
		if err != nil {
			buildErr = err
			return
		}
		sluiceBin = filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", sluiceBin, "./cmd/sluice")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, err := exec.Command(sluiceBin, sub, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("sluice %s --help: %v\n%s", sub, err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("sluice %s --help listed %d flags; the parser no longer reads its output:\n%s", sub, len(flags), out)
	}
	return flags
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sluiceBin != "" {
		os.RemoveAll(filepath.Dir(sluiceBin))
	}
	os.Exit(code)
}

// checkPodSpec holds a pod template to what the schema cannot check.
// claims are a StatefulSet's volume claim templates: volumes too.
func checkPodSpec(t *testing.T, what string, sel *metav1.LabelSelector, tmpl corev1.PodTemplateSpec, claims []corev1.PersistentVolumeClaim, flagsOf func(string) map[string]bool) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", what, err)
	} else if !s.Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("%s: selector %v does not match its pod labels %v", what, s, tmpl.Labels)
	}
	for k, v := range tmpl.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("%s: label key %q: %v", what, k, errs)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("%s: label %s=%q: %v", what, k, v, errs)
		}
	}
	spec := tmpl.Spec
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pods must run as non-root", what)
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, c := range claims {
		volumes[c.Name] = true
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || !s.Matches(labels.Set(tmpl.Labels)) {
			t.Errorf("%s: topology spread on %s does not select its own pods", what, tsc.TopologyKey)
		}
	}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, c := range all {
		cw := what + " container " + c.Name
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: no CPU or memory request", cw)
		}
		ports := map[string]bool{}
		numbers := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
			numbers[fmt.Sprint(p.ContainerPort)] = true
		}
		// A listener the container binds must be a port it declares
		// (Services and probes reach it by that name).
		for _, a := range c.Args {
			m := regexp.MustCompile(`^--(kafka-addr|http-addr|peer-addr|listen)=0\.0\.0\.0:(\d+)$`).FindStringSubmatch(a)
			if m != nil && !numbers[m[2]] {
				t.Errorf("%s: %s listens on port %s, which the container does not declare", cw, m[1], m[2])
			}
		}
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if pr == nil {
				continue
			}
			switch {
			case pr.HTTPGet != nil:
				if !ports[pr.HTTPGet.Port.String()] {
					t.Errorf("%s: probe on port %s, which the container does not name", cw, pr.HTTPGet.Port.String())
				}
				if pr.HTTPGet.Path != "/healthz" {
					t.Errorf("%s: probe on %s, want /healthz", cw, pr.HTTPGet.Path)
				}
			case pr.TCPSocket != nil:
				if !ports[pr.TCPSocket.Port.String()] {
					t.Errorf("%s: probe on port %s, which the container does not name", cw, pr.TCPSocket.Port.String())
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("%s: mounts volume %q, which the pod does not have", cw, m.Name)
			}
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, a := range c.Args {
			for _, m := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
				if !env[m[1]] {
					t.Errorf("%s: argument %q names $(%s), which is not in its env (Kubernetes would pass it literally)", cw, a, m[1])
				}
			}
		}
		if c.Image == "" || strings.HasSuffix(c.Image, ":") {
			t.Errorf("%s: image %q", cw, c.Image)
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: want a read-only root file system", cw)
		}
		if len(c.Args) == 0 || len(c.Command) > 0 {
			continue // not the sluice image
		}
		flags := flagsOf(c.Args[0])
		for _, a := range c.Args[1:] {
			if !strings.HasPrefix(a, "--") {
				t.Errorf("%s: argument %q is not a flag", cw, a)
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !flags[name] {
				t.Errorf("%s: sluice %s has no flag --%s", cw, c.Args[0], name)
			}
		}
	}
}

// check validates one rendering as a whole.
func check(t *testing.T, r rendered) {
	t.Helper()
	flagCache := map[string]map[string]bool{}
	flagsOf := func(sub string) map[string]bool {
		if flagCache[sub] == nil {
			flagCache[sub] = sluiceFlags(t, sub)
		}
		return flagCache[sub]
	}
	type workload struct {
		name   string
		labels map[string]string
	}
	var pods []workload
	for _, s := range r.statefulSets() {
		checkPodSpec(t, "StatefulSet "+s.Name, s.Spec.Selector, s.Spec.Template, s.Spec.VolumeClaimTemplates, flagsOf)
		pods = append(pods, workload{s.Name, s.Spec.Template.Labels})
	}
	for _, d := range r.deployments() {
		checkPodSpec(t, "Deployment "+d.Name, d.Spec.Selector, d.Spec.Template, nil, flagsOf)
		pods = append(pods, workload{d.Name, d.Spec.Template.Labels})
	}
	selects := func(sel labels.Selector) []string {
		var names []string
		for _, p := range pods {
			if sel.Matches(labels.Set(p.labels)) {
				names = append(names, p.name)
			}
		}
		return names
	}
	for _, s := range r.services() {
		if n := selects(labels.SelectorFromSet(s.Spec.Selector)); len(n) != 1 {
			t.Errorf("Service %s selects %v, want exactly one workload", s.Name, n)
		}
	}
	for _, p := range ofType[*policyv1.PodDisruptionBudget](r) {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if n := selects(sel); len(n) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want exactly one workload", p.Name, n)
		}
	}
	for _, sm := range ofType[*serviceMonitor](r) {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range r.services() {
			if sel.Matches(labels.Set(s.Labels)) {
				got = append(got, s.Name)
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port }) {
					t.Errorf("ServiceMonitor scrapes port %q, which Service %s does not name", sm.Spec.Endpoints[0].Port, s.Name)
				}
			}
		}
		// Every meta replica (headless) and the agents, each once.
		if !slices.Equal(got, []string{"sluice-agent", "sluice-meta-headless"}) {
			t.Errorf("ServiceMonitor selects Services %v, want sluice-agent and sluice-meta-headless", got)
		}
	}
	for _, o := range r.objs {
		m, ok := o.(metav1.Object)
		if !ok {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(m.GetName()); len(errs) > 0 {
			t.Errorf("name %q: %v", m.GetName(), errs)
		}
	}
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func argValue(args []string, flag string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			return v, true
		}
		if a == "--"+flag {
			return "", true
		}
	}
	return "", false
}

func base() map[string]any {
	return map[string]any{"bucket": "s3://sluice-test/prefix?region=eu-west-1"}
}

// TestChartLint runs Helm's linter (helm lint) over the chart with the
// values a user must give.
func TestChartLint(t *testing.T) {
	l := lint.All(chartDir, base(), "streaming", false)
	for _, m := range l.Messages {
		t.Logf("%s", m)
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
	// The linter must see our templates: a chart it could not load
	// would show one error, not silence.
	if l.HighestSeverity >= support.WarningSev {
		t.Errorf("helm lint: highest severity %d", l.HighestSeverity)
	}
}

// TestChartEmbedded renders the default: meta with the embedded store on
// a PersistentVolumeClaim, agents taking their zone from the node.
func TestChartEmbedded(t *testing.T) {
	r, err := render(t, base())
	if err != nil {
		t.Fatal(err)
	}
	check(t, r)
	sts := r.statefulSets()
	if len(sts) != 1 || *sts[0].Spec.Replicas != 1 || len(sts[0].Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one meta StatefulSet of 1 replica with a volume claim, got %d", len(sts))
	}
	meta := container(t, sts[0].Spec.Template.Spec, "meta")
	if v, _ := argValue(meta.Args, "store"); v != "/data/meta" {
		t.Errorf("meta --store=%q, want /data/meta on the claim", v)
	}
	if sts[0].Spec.Template.Spec.AutomountServiceAccountToken == nil || *sts[0].Spec.Template.Spec.AutomountServiceAccountToken {
		t.Errorf("meta must run without an API token (it holds no credentials)")
	}
	deps := r.deployments()
	if len(deps) != 1 {
		t.Fatalf("want one agent Deployment, got %d", len(deps))
	}
	spec := deps[0].Spec.Template.Spec
	agent := container(t, spec, "agent")
	if v, _ := argValue(agent.Args, "zone-file"); v != "/zone/zone" {
		t.Errorf("agent --zone-file=%q, want the init container's /zone/zone", v)
	}
	if len(spec.InitContainers) != 1 || !strings.Contains(spec.InitContainers[0].Args[0], "topology.kubernetes.io/zone") {
		t.Errorf("want the init container that reads the node's zone label")
	}
	if _, ok := argValue(agent.Args, "meta-insecure"); !ok {
		t.Errorf("without meta TLS the agents need --meta-insecure (or they refuse to start)")
	}
	if v, _ := argValue(agent.Args, "meta-addr"); v != "sluice-meta-0.sluice-meta-headless.streaming.svc:9093" {
		t.Errorf("agent --meta-addr=%q", v)
	}
	if v, _ := argValue(agent.Args, "bucket"); v != "s3://sluice-test/prefix?region=eu-west-1" {
		t.Errorf("agent --bucket=%q", v)
	}
	keyFromSecret := slices.ContainsFunc(agent.Env, func(e corev1.EnvVar) bool {
		return e.Name == "SLUICE_AGENT_KEY" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "sluice-agent-key"
	})
	if !keyFromSecret {
		t.Errorf("the agent key must come from the Secret, in SLUICE_AGENT_KEY")
	}
	keys := map[string]bool{}
	for _, c := range spec.TopologySpreadConstraints {
		keys[c.TopologyKey] = true
	}
	if !keys["topology.kubernetes.io/zone"] {
		t.Errorf("agents are not spread over zones")
	}
	if spec.ServiceAccountName != "sluice" {
		t.Errorf("agents run as ServiceAccount %q, want the chart's (it carries the bucket identity)", spec.ServiceAccountName)
	}
	if n := len(ofType[*rbacv1.ClusterRole](r)); n != 1 {
		t.Errorf("%d ClusterRoles, want the one that lets the init container read nodes", n)
	}
	if n := len(ofType[*policyv1.PodDisruptionBudget](r)); n != 2 {
		t.Errorf("%d PodDisruptionBudgets, want meta's and the agents'", n)
	}
	if n := len(ofType[*serviceMonitor](r)); n != 0 {
		t.Errorf("a ServiceMonitor without serviceMonitor.enabled")
	}
	if !strings.Contains(r.notes, "meta keys create") {
		t.Errorf("NOTES.txt should say how to create the agent key")
	}
}

// TestChartPostgres renders meta as two replicas on PostgreSQL, with
// TLS to meta, a fixed zone, IRSA and a ServiceMonitor.
func TestChartPostgres(t *testing.T) {
	vals := base()
	vals["meta"] = map[string]any{
		"store":      "postgres",
		"replicas":   2,
		"postgres":   map[string]any{"existingSecret": "sluice-pg"},
		"adminToken": map[string]any{"existingSecret": "sluice-admin"},
		"tls":        map[string]any{"secretName": "sluice-meta-tls"},
	}
	vals["agent"] = map[string]any{
		"zone":      map[string]any{"fromNodeLabel": false, "value": "eu-west-1a"},
		"group":     "ingest",
		"roles":     "produce,consume",
		"extraArgs": []any{"--flush-interval=100ms"},
	}
	vals["serviceAccount"] = map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/sluice"}}
	vals["serviceMonitor"] = map[string]any{"enabled": true}
	r, err := render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	check(t, r)
	sts := r.statefulSets()
	if len(sts) != 1 || *sts[0].Spec.Replicas != 2 || len(sts[0].Spec.VolumeClaimTemplates) != 0 {
		t.Fatalf("want one meta StatefulSet of 2 replicas without volume claims")
	}
	meta := container(t, sts[0].Spec.Template.Spec, "meta")
	if v, _ := argValue(meta.Args, "store"); v != "$(SLUICE_META_STORE)" {
		t.Errorf("meta --store=%q, want the URL from the Secret", v)
	}
	if meta.LivenessProbe.TCPSocket == nil {
		t.Errorf("with PostgreSQL a standby's /healthz is 503: liveness must not use it")
	}
	if _, ok := argValue(meta.Args, "tls-cert"); !ok {
		t.Errorf("meta.tls.secretName set but meta has no --tls-cert")
	}
	agent := container(t, r.deployments()[0].Spec.Template.Spec, "agent")
	if v, _ := argValue(agent.Args, "meta-addr"); v != "sluice-meta-0.sluice-meta-headless.streaming.svc:9093,sluice-meta-1.sluice-meta-headless.streaming.svc:9093" {
		t.Errorf("agent --meta-addr=%q, want both replicas", v)
	}
	if _, ok := argValue(agent.Args, "meta-insecure"); ok {
		t.Errorf("--meta-insecure with meta TLS on")
	}
	if v, _ := argValue(agent.Args, "zone"); v != "eu-west-1a" {
		t.Errorf("agent --zone=%q", v)
	}
	if len(r.deployments()[0].Spec.Template.Spec.InitContainers) != 0 || len(ofType[*rbacv1.ClusterRole](r)) != 0 {
		t.Errorf("a fixed zone needs no init container and no access to nodes")
	}
	sas := ofType[*corev1.ServiceAccount](r)
	if len(sas) != 1 || sas[0].Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("the ServiceAccount must carry the IRSA annotation")
	}
	if n := len(ofType[*serviceMonitor](r)); n != 1 {
		t.Errorf("%d ServiceMonitors, want 1", n)
	}
	if !strings.Contains(r.notes, "--meta-addr sluice-meta.streaming.svc:9093 --meta-ca /tls/ca.crt") {
		t.Errorf("with meta TLS, NOTES.txt must create the key over TLS:\n%s", r.notes)
	}
}

// TestChartRefusesBadValues: each mistake fails the render with a message
// naming the value to set.
func TestChartRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no bucket", map[string]any{}, "bucket is required"},
		{"unknown store", map[string]any{"bucket": "s3://b", "meta": map[string]any{"store": "etcd"}}, "/meta/store"},
		{"postgres without URL", map[string]any{"bucket": "s3://b", "meta": map[string]any{"store": "postgres"}}, "meta.postgres.existingSecret"},
		{"one postgres replica", map[string]any{"bucket": "s3://b", "meta": map[string]any{"store": "postgres", "replicas": 1, "postgres": map[string]any{"existingSecret": "pg"}}}, "meta.replicas"},
		{"no agent key", map[string]any{"bucket": "s3://b", "agent": map[string]any{"key": map[string]any{"existingSecret": ""}}}, "agent.key.existingSecret"},
		// values.schema.json: a misspelt or mistyped value is refused by
		// name instead of silently ignored.
		{"misspelt value", map[string]any{"bucket": "s3://b", "agent": map[string]any{"replica": 3}}, "replica"},
		{"unknown role", map[string]any{"bucket": "s3://b", "agent": map[string]any{"roles": "produce,fetch"}}, "/agent/roles"},
		{"bytes as a string", map[string]any{"bucket": "s3://b", "agent": map[string]any{"cacheBytes": "512Mi"}}, "/agent/cacheBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
