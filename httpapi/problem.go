package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/errandhq/errand"
)

// problemKind is how an error code looks over HTTP.
type problemKind struct {
	status int
	title  string
}

// problems maps every error code to its status and title: the one place where
// errors become HTTP.
var problems = map[string]problemKind{
	errand.EMALFORMED:        {http.StatusBadRequest, "Malformed JSON"},
	errand.EINVALID:          {http.StatusBadRequest, "Invalid request"},
	errand.EVALIDATION:       {http.StatusUnprocessableEntity, "Invalid input"},
	errand.ERESULTINVALID:    {http.StatusUnprocessableEntity, "Invalid result"},
	errand.ECURSOR:           {http.StatusBadRequest, "Invalid cursor"},
	errand.ENOTFOUND:         {http.StatusNotFound, "Not found"},
	errand.EOPNOTFOUND:       {http.StatusNotFound, "Operation not found"},
	errand.EJOBNOTFOUND:      {http.StatusNotFound, "Job not found"},
	errand.ECHANNELNOTFOUND:  {http.StatusNotFound, "Channel not found"},
	errand.EIDEMPOTENCY:      {http.StatusUnprocessableEntity, "Idempotency key reused"},
	errand.ELEASEEXPIRED:     {http.StatusConflict, "Lease expired"},
	errand.ECONFLICT:         {http.StatusConflict, "Conflict"},
	errand.ENOTTERMINAL:      {http.StatusConflict, "Job not finished"},
	errand.ETOOLARGE:         {http.StatusRequestEntityTooLarge, "Body too large"},
	errand.EMEDIATYPE:        {http.StatusUnsupportedMediaType, "Unsupported media type"},
	errand.EUNAUTHORIZED:     {http.StatusUnauthorized, "Unauthorized"},
	errand.EFORBIDDEN:        {http.StatusForbidden, "Forbidden"},
	errand.ERATELIMITED:      {http.StatusTooManyRequests, "Too many requests"},
	errand.EQUEUEFULL:        {http.StatusServiceUnavailable, "Queue full"},
	errand.EUNAVAILABLE:      {http.StatusServiceUnavailable, "Service unavailable"},
	errand.ESTORAGEFULL:      {http.StatusInsufficientStorage, "Storage full"},
	errand.EMETHODNOTALLOWED: {http.StatusMethodNotAllowed, "Method not allowed"},
	errand.EINTERNAL:         {http.StatusInternalServerError, "Internal error"},
}

// Problem turns err into the RFC 9457 problem a client sees. Errors without a
// code are internal: their text is not shown.
func Problem(err error) *errand.Problem {
	code := errand.ErrorCode(err)
	kind, ok := problems[code]
	if !ok {
		code, kind = errand.EINTERNAL, problems[errand.EINTERNAL]
	}
	p := &errand.Problem{Type: "/docs/problems#" + code, Title: kind.title, Status: kind.status,
		Code: code, Detail: errand.ErrorMessage(err)}
	var e *errand.Error
	if errors.As(err, &e) {
		p.Errors = e.Fields
	}
	return p
}

// writeError answers with err as a problem; internal errors are logged with the
// request id. Handlers answer through access.fail, which also audits refusals.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := Problem(err)
	if p.Code == errand.EINTERNAL {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client went away
		}
		log.ErrorContext(r.Context(), "internal error", "err", err, "request_id", requestID(r.Context()),
			"method", r.Method, "path", errand.RedactLeases(r.URL.Path))
	}
	setRateFields(w.Header(), r.Context())
	var e *errand.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, p.Status, p, "application/problem+json")
}

// handlerFunc is a handler that returns its failure instead of answering it
// (see access.handle). It returns an error only before it has written anything.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// ProblemKind is how an error code is answered: its status and title.
type ProblemKind struct {
	Status int
	Title  string
}

// Problems returns every error code with how it is answered, for the API's
// description of itself (package spec).
func Problems() map[string]ProblemKind {
	out := make(map[string]ProblemKind, len(problems))
	for code, k := range problems {
		out[code] = ProblemKind{k.status, k.title}
	}
	return out
}
