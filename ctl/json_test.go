package ctl

import (
	"testing"
)

// TestJSONEveryCommand: every command's --format json is one JSON
// document (or JSON lines) that parses back into what the command did.
func TestJSONEveryCommand(t *testing.T) {
	c := newCLI(t)

	var created []struct {
		Name       string `json:"name"`
		ID         string `json:"id"`
		Partitions int32  `json:"partitions"`
	}
	c.jsonOf(&created, "", "topic", "create", "j", "--partitions", "2")
	if len(created) != 1 || created[0].Name != "j" || created[0].Partitions != 2 || created[0].ID == "" {
		t.Errorf("topic create --format json: %+v", created)
	}
	var altered []struct {
		Name    string            `json:"name"`
		Set     map[string]string `json:"set"`
		Deleted []string          `json:"deleted"`
	}
	c.jsonOf(&altered, "", "topic", "alter-config", "j", "--set", "retention.ms=1000")
	if len(altered) != 1 || altered[0].Set["retention.ms"] != "1000" || altered[0].Deleted == nil {
		t.Errorf("topic alter-config --format json: %+v", altered)
	}
	var grown []statusJSON
	c.jsonOf(&grown, "", "topic", "add-partitions", "j", "--num", "1")
	if len(grown) != 1 || grown[0].Name != "j" || grown[0].Status != "added 1 partition" {
		t.Errorf("topic add-partitions --format json: %+v", grown)
	}

	var produced struct {
		Topic      string      `json:"topic"`
		Records    int64       `json:"records"`
		Partitions []partStats `json:"partitions"`
	}
	c.jsonOf(&produced, `{"key":"a","value":"1"}`+"\n"+`{"key":null,"value":"2"}`+"\n", "produce", "j", "-p", "2")
	if produced.Topic != "j" || produced.Records != 2 || len(produced.Partitions) != 1 || produced.Partitions[0].Last != 1 {
		t.Errorf("produce --format json: %+v", produced)
	}
	c.ok("", "consume", "j", "--group", "jg", "-n", "2")

	var groups []struct {
		Name         string `json:"name"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
	}
	c.jsonOf(&groups, "", "group", "list")
	if len(groups) != 1 || groups[0].Name != "jg" || groups[0].State != "Empty" || groups[0].ProtocolType != "consumer" {
		t.Errorf("group list --format json: %+v", groups)
	}
	var lag struct {
		Name     string    `json:"name"`
		TotalLag int64     `json:"total_lag"`
		Lag      []lagJSON `json:"partitions"`
	}
	c.jsonOf(&lag, "", "group", "lag", "jg")
	if lag.Name != "jg" || lag.TotalLag != 0 || len(lag.Lag) != 3 {
		t.Errorf("group lag --format json: %+v", lag)
	}
	var deleted []statusJSON
	c.jsonOf(&deleted, "", "group", "delete", "jg")
	if len(deleted) != 1 || deleted[0].Status != "deleted" {
		t.Errorf("group delete --format json: %+v", deleted)
	}
	c.jsonOf(&deleted, "", "topic", "delete", "j")
	if len(deleted) != 1 || deleted[0].Name != "j" || deleted[0].Status != "deleted" {
		t.Errorf("topic delete --format json: %+v", deleted)
	}
	var none []topicJSON
	c.jsonOf(&none, "", "topic", "list")
	if none == nil || len(none) != 0 {
		t.Errorf("topic list --format json of no topics: %#v, want []", none)
	}
}
