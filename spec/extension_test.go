package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestExtension: a transport adds its route and its AsyncAPI parts without
// a change here; one that takes a key already there is refused.
func TestExtension(t *testing.T) {
	in := input(t, "../examples/errand.yaml")
	in.Routes = append(in.Routes, "POST /v1/graphql")
	in.Extensions = []Extension{{Name: "graphql",
		Routes: map[string]Route{"POST /v1/graphql": {ID: "graphql", Tag: "Events", Summary: "GraphQL",
			Body:    &Body{Schema: schema{"type": "object"}, Required: true},
			Answers: []Answer{{Status: 200, Description: "The result.", Schema: schema{"type": "object"}}}}},
		Servers: map[string]any{"graphql": map[string]any{"host": Self, "protocol": "ws", "pathname": "/v1/graphql"},
			"broker": map[string]any{"host": "nats.internal:4222", "protocol": "nats"}},
		Tags:       []Tag{{Name: "GraphQL", Description: "GraphQL."}},
		Sections:   []Section{{ID: "gql", Title: "GraphQL schema", Text: []string{"The schema."}, Code: "type Query { me: ID }"}},
		Channels:   map[string]any{"graphql": schema{"address": "/v1/graphql", "messages": schema{"next": aref("#/components/messages/graphql.next")}}},
		Operations: map[string]any{"graphql_next": schema{"action": "send", "channel": aref("#/channels/graphql"), "messages": []any{aref("#/channels/graphql/messages/next")}}},
		Messages:   map[string]any{"graphql.next": schema{"payload": schema{"type": "object"}}},
	}}
	d, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	var oa struct {
		Paths map[string]map[string]json.RawMessage
	}
	var aa struct{ Servers, Channels, Operations map[string]json.RawMessage }
	json.Unmarshal(d.OpenAPIJSON, &oa)
	json.Unmarshal(d.AsyncAPIJSON, &aa)
	if oa.Paths["/v1/graphql"]["post"] == nil || aa.Servers["graphql"] == nil || aa.Channels["graphql"] == nil ||
		aa.Operations["graphql_next"] == nil || !strings.Contains(string(d.AsyncAPIJSON), `"graphql.next"`) {
		t.Fatalf("the extension's parts are not in the documents")
	}
	var self struct{ Host, Protocol, Pathname string }
	json.Unmarshal(aa.Servers["graphql"], &self)
	if self.Host == Self || self.Protocol != "ws" || !strings.HasSuffix(self.Pathname, "/v1/graphql") || aa.Servers["broker"] == nil {
		t.Errorf("servers: errand's own at %+v, want errand's host; the broker's kept", self)
	}
	if !strings.Contains(string(d.OpenAPIJSON), `"name": "GraphQL"`) {
		t.Errorf("the extension's tag is not in the OpenAPI document")
	}
	if page := string(d.Page); !strings.Contains(page, `<section id="gql">`) || !strings.Contains(page, "type Query { me: ID }") {
		t.Errorf("the extension's section is not on /docs")
	}
	in.Extensions[0].Channels = map[string]any{"ws": schema{}}
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), `channel "ws"`) {
		t.Fatalf("an extension taking the channel ws: %v, want an error naming it", err)
	}
}
