package graphql_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/errandhq/errand/bench"
)

// BenchmarkJobRead reads one job over REST (GET /v1/jobs/{id}) and through
// GraphQL (job(id), the fields REST answers), on the same server: the ratio
// of their ns/op is the cost of GraphQL on the read path.
func BenchmarkJobRead(b *testing.B) {
	a := newAPI(b, nil)
	r := a.query(`mutation { submitJob(operation: "echo", input: {type: "monthly"}, wait: 0) { id } }`, nil)
	var j struct{ ID string }
	json.Unmarshal(r.Data["submitJob"], &j)
	rest, gql := bench.JobReads(a.URL, j.ID, 1, 0)
	hc := &http.Client{Transport: bench.NewTransport(8)}
	for _, l := range []bench.Load{rest, gql} {
		b.Run(l.Name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(cmp.Or(l.Method, "POST"), l.URL, bytes.NewReader(l.Body))
					req.Header = l.Header.Clone()
					resp, err := hc.Do(req)
					if err != nil || resp.StatusCode != 200 {
						b.Fatal(err, resp)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
