package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/errandhq/errand"
	"github.com/errandhq/errand/jsonguard"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// appender is a value that writes its own JSON (errand.Job, errand.Lease and
// the lists of them answered here): encoding/json would scan and compact what
// a MarshalJSON method returns once more, and jobs are most of what errand
// writes.
type appender interface{ AppendJSON([]byte) []byte }

// parted is an answer that may be large (a page of jobs, a lease answer): it
// appends itself item by item and calls flush after each, which may send what
// has gathered and hand back an empty buffer, so the answer is never held
// whole. With a nil flush it appends all of itself (as AppendJSON).
type parted interface {
	appendParts(b []byte, flush func([]byte) []byte) []byte
}

// partBytes is how much of a parted answer gathers before it is sent on.
const partBytes = 64 << 10

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any, contentType string) {
	if pa, ok := v.(parted); ok {
		writeParts(w, status, pa, contentType)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { putBuffer(buf) }()
	if a, ok := v.(appender); ok {
		buf.Write(append(a.AppendJSON(buf.AvailableBuffer()), '\n'))
	} else if err := newEncoder(buf).Encode(v); err != nil {
		http.Error(w, `{"code":"internal","title":"Internal error","status":500}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeParts answers with a parted value: with a Content-Length when it is
// small, else sent on (chunked) as it is written.
func writeParts(w http.ResponseWriter, status int, pa parted, contentType string) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { putBuffer(buf) }()
	h, started := w.Header(), false
	flush := func(b []byte) []byte {
		if len(b) < partBytes {
			return b
		}
		if !started {
			h.Set("Content-Type", contentType)
			w.WriteHeader(status)
			started = true
		}
		_, _ = w.Write(b)
		return b[:0]
	}
	b := append(pa.appendParts(buf.AvailableBuffer(), flush), '\n')
	if !started {
		h.Set("Content-Type", contentType)
		h.Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(status)
	}
	_, _ = w.Write(b)
}

// putBuffer gives a buffer back to the pool unless a large answer grew it:
// the pool would keep it for the next small one.
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > partBytes {
		return
	}
	buf.Reset()
	bufPool.Put(buf)
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// appendPlain appends what writeJSON writes for v (without its newline).
func appendPlain(b []byte, v any) []byte {
	buf := bytes.NewBuffer(b)
	if err := newEncoder(buf).Encode(v); err != nil {
		return append(b, "null"...)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// appendList appends {"name":[items…]}, each item written by item.
func appendList[T any](b []byte, name string, items []T, item func([]byte, *T) []byte) []byte {
	return append(appendItems(append(b, '{'), nil, name, items, item), '}')
}

// appendItems appends "name":[items…], each item written by item and followed
// by a call of flush (when not nil; see parted).
func appendItems[T any](b []byte, flush func([]byte) []byte, name string, items []T, item func([]byte, *T) []byte) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = item(b, &items[i])
		if flush != nil {
			b = flush(b)
		}
	}
	return append(b, ']')
}

// encode answers status with v as application/json.
func encode(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v, "application/json") }

// readBody reads the whole body, refusing more than the server's limit (set by
// the limitBody middleware).
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errand.Errorf(errand.ETOOLARGE, "the body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, errand.Errorf(errand.EINVALID, "reading the body: %v", err)
	}
	return b, nil
}

// decode reads the body as JSON into a T. Unknown fields, wrong types and
// trailing data are errors that point at the field. An empty body decodes as {}
// when allowEmpty.
func decode[T any](r *http.Request, allowEmpty bool) (T, error) {
	var v T
	b, err := readBody(r)
	if err != nil {
		return v, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return v, nil
		}
		return v, errand.Errorf(errand.EMALFORMED, "the body is empty; send a JSON object")
	}
	return v, unmarshalStrict(b, &v)
}

// unmarshalStrict decodes b into v and explains what is wrong. b is checked
// first, in one pass, against errand's rules for JSON (jsonguard: nesting,
// UTF-8, duplicate names, number range, exact field names, no NUL in what
// becomes text), which cover the JSON inside it that is stored as it came
// (job input, results, event data).
func unmarshalStrict(b []byte, v any) error {
	if err := jsonguard.Check(b, jsonguard.ShapeOf(reflect.TypeOf(v).Elem())); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data")
		}
	}
	return jsonError(err)
}

// jsonError turns an encoding/json error into a client error.
func jsonError(err error) error {
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errand.Errorf(errand.EMALFORMED, "the body is not valid JSON: %v (at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ):
		ptr := "/" + strings.ReplaceAll(typ.Field, ".", "/")
		if typ.Field == "" {
			return errand.Errorf(errand.EMALFORMED, "the body must be a JSON object, not %s", typ.Value)
		}
		return &errand.Error{Code: errand.EVALIDATION, Message: "the request has fields of the wrong type",
			Fields: []errand.FieldError{{Pointer: ptr, Message: fmt.Sprintf("must be %s, not %s", jsonType(typ.Type.String()), typ.Value)}}}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errand.Errorf(errand.EMALFORMED, "the body ends in the middle of a JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &errand.Error{Code: errand.EVALIDATION, Message: "the request has an unknown field",
			Fields: []errand.FieldError{{Pointer: "/" + name, Message: "unknown field"}}}
	case err.Error() == "trailing data":
		return errand.Errorf(errand.EMALFORMED, "the body has data after the JSON value")
	}
	var e *errand.Error
	if errors.As(err, &e) {
		return e
	}
	return errand.Errorf(errand.EMALFORMED, "the body is not valid JSON: %v", err)
}

func jsonType(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case goType == "string", goType == "*string":
		return "a string"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "a " + goType
}
