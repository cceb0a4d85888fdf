package vecron

// The privileged host functions of issue 15 (docs/abi.md), each behind its permission. A refusal
// or a failure comes back as a *HostError, never a trap.

import (
	"encoding/json"
	"runtime"
)

// HostError is a refused or failed host call. Code is one of permission_denied, egress_denied,
// timeout, too_large, bad_request, not_found, upstream_error, unavailable, cancelled (or
// bad_response when the answer could not be read).
type HostError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *HostError) Error() string { return e.Code + ": " + e.Message }

// call sends a request to one import and decodes its result into out (nil: skip).
func call(fn func(ptr, length int32) int64, req any, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return &HostError{Code: "bad_request", Message: err.Error()}
	}
	r := fn(ptrOf(b), int32(len(b)))
	runtime.KeepAlive(b)
	answer := unpacked(r)
	var e struct {
		Error *HostError `json:"error"`
	}
	if err := json.Unmarshal(answer, &e); err != nil {
		return &HostError{Code: "bad_response", Message: err.Error()}
	}
	if e.Error != nil {
		return e.Error
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return &HostError{Code: "bad_response", Message: err.Error()}
		}
	}
	return nil
}

// The raw calls: any request of docs/abi.md, the result as a Value.
func HTTPRequestRaw(req any) (Value, error) { return raw(hostHTTPRequest, req) }
func DBQueryRaw(req any) (Value, error)     { return raw(hostDBQuery, req) }
func FileReadRaw(req any) (Value, error)    { return raw(hostFileRead, req) }
func FileWriteRaw(req any) (Value, error)   { return raw(hostFileWrite, req) }
func FileListRaw(req any) (Value, error)    { return raw(hostFileList, req) }
func CryptoRaw(req any) (Value, error)      { return raw(hostCrypto, req) }
func TimeRaw(req any) (Value, error)        { return raw(hostTime, req) }

func raw(fn func(ptr, length int32) int64, req any) (Value, error) {
	var v any
	err := call(fn, req, &v)
	return Value{v}, err
}

// HTTPRequest is an http_request (http:read for GET, HEAD, OPTIONS; http:write otherwise).
type HTTPRequest struct {
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers"`
	Body       *string           `json:"body"`
	BodyBase64 string            `json:"body_base64,omitempty"`
	TimeoutMS  int               `json:"timeout_ms,omitempty"`
}

type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is the text ("" when it is not UTF-8: then BodyBase64).
	Body       string `json:"body"`
	BodyBase64 string `json:"body_base64"`
}

// JSON decodes the body.
func (r *HTTPResponse) JSON(out any) error { return json.Unmarshal([]byte(r.Body), out) }

// HTTP sends a request; an answer of any status is not an error.
func HTTP(req HTTPRequest) (*HTTPResponse, error) {
	if req.Headers == nil {
		req.Headers = map[string]string{}
	}
	var resp HTTPResponse
	if err := call(hostHTTPRequest, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Get is HTTP with GET and no body.
func Get(url string) (*HTTPResponse, error) { return HTTP(HTTPRequest{Method: "GET", URL: url}) }

// Post is HTTP with POST and a body.
func Post(url, contentType, body string) (*HTTPResponse, error) {
	return HTTP(HTTPRequest{Method: "POST", URL: url, Headers: map[string]string{"content-type": contentType}, Body: &body})
}

// Column is a column of a db_query answer: its name and the database's type name.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Rows is the answer of db_query: rows are objects by column name.
type Rows struct {
	Columns  []Column         `json:"columns"`
	Rows     []map[string]any `json:"rows"`
	RowCount int              `json:"row_count"`
	// AffectedRows is set for INSERT, UPDATE, DELETE, MERGE.
	AffectedRows *int64 `json:"affected_rows"`
}

// Cell is a cell by row and column name (null when missing).
func (r *Rows) Cell(row int, column string) Value {
	if row < 0 || row >= len(r.Rows) {
		return Value{}
	}
	return Value{r.Rows[row][column]}
}

// DBQuery runs one statement with $1.. parameters on a named datasource (database:read/write).
func DBQuery(datasource, sql string, params ...any) (*Rows, error) {
	if params == nil {
		params = []any{}
	}
	var rows Rows
	err := call(hostDBQuery, map[string]any{"datasource": datasource, "sql": sql, "params": params}, &rows)
	if err != nil {
		return nil, err
	}
	return &rows, nil
}

type FileContent struct {
	Content string `json:"content"`
	// Encoding is "utf8", or "base64" when the file is not UTF-8 (then Content is base64).
	Encoding string `json:"encoding"`
	Size     int64  `json:"size"`
}

type FileWritten struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

type FileInfo struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	ModifiedAt string `json:"modified_at"`
}

// FileRead reads a file of the job's area (jobs/{job_id}/) or of an area a permission names.
func FileRead(path string) (*FileContent, error) {
	var f FileContent
	if err := call(hostFileRead, map[string]any{"path": path}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// FileWrite writes UTF-8 text (file:write).
func FileWrite(path, content string) (*FileWritten, error) {
	var w FileWritten
	if err := call(hostFileWrite, map[string]any{"path": path, "content": content, "encoding": "utf8"}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// FileList lists the files under a prefix.
func FileList(prefix string) ([]FileInfo, error) {
	var l struct {
		Files []FileInfo `json:"files"`
	}
	if err := call(hostFileList, map[string]any{"prefix": prefix}, &l); err != nil {
		return nil, err
	}
	return l.Files, nil
}

// Digest is a digest in hex and base64.
type Digest struct {
	Hex    string `json:"hex"`
	Base64 string `json:"base64"`
}

func digest(req map[string]any) (*Digest, error) {
	var d Digest
	if err := call(hostCrypto, req, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func SHA256(data string) (*Digest, error) {
	return digest(map[string]any{"op": "sha256", "data": data})
}
func SHA512(data string) (*Digest, error) {
	return digest(map[string]any{"op": "sha512", "data": data})
}

// HMACSHA256 uses the key of secret variable keySecret (secret:use); the key stays in the host.
func HMACSHA256(keySecret, data string) (*Digest, error) {
	return digest(map[string]any{"op": "hmac_sha256", "key_secret": keySecret, "data": data})
}

// RandomBytes is n random bytes, base64.
func RandomBytes(n int) (string, error) {
	var r struct {
		Base64 string `json:"base64"`
	}
	err := call(hostCrypto, map[string]any{"op": "random_bytes", "n": n}, &r)
	return r.Base64, err
}

// UUID is a random UUID.
func UUID() (string, error) {
	var r struct {
		UUID string `json:"uuid"`
	}
	err := call(hostCrypto, map[string]any{"op": "uuid"}, &r)
	return r.UUID, err
}

// Now is the host's time: epoch milliseconds and the ISO text in the zone asked for.
type Now struct {
	EpochMS int64 `json:"epoch_ms"`
	// ISO is UTC (Z); Local has the zone's offset.
	ISO           string `json:"iso"`
	Local         string `json:"local"`
	TZ            string `json:"tz"`
	OffsetMinutes int    `json:"offset_minutes"`
}

// TimeNow is now in tz ("": Asia/Ho_Chi_Minh).
func TimeNow(tz string) (*Now, error) {
	req := map[string]any{"op": "now"}
	if tz != "" {
		req["tz"] = tz
	}
	var n Now
	if err := call(hostTime, req, &n); err != nil {
		return nil, err
	}
	return &n, nil
}
