// Package vecron is the guest SDK for Go (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared). It hides
// the guest ABI of docs/abi.md: the alloc export, the packed (ptr << 32 | len) results, JSON in and
// out, and the host imports of module `vecron` (a host function is imported only when the module
// calls it).
//
//	//go:wasmexport process
//	func process(ptr, length int32) int64 { return vecron.Run(ptr, length, handle) }
//
//	func handle(in vecron.Value) any {
//		vecron.Info("hello %s", in.Path("user.name").Raw())
//		return map[string]any{"next_step": "notify"}
//	}
package vecron

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Run decodes the input, calls the handler and returns the packed JSON of what it returns (what an
// exported entry function returns). Input that is not JSON gets a verdict; an output that cannot
// be encoded (NaN, a channel) is an error verdict too, naming the problem.
func Run(ptr, length int32, handler func(in Value) any) int64 {
	input := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), int(length))
	in, err := ParseValue(input)
	if err != nil {
		return pack(mustJSON(Invalid("the input is not JSON: " + err.Error())))
	}
	out, err := json.Marshal(clean(handler(in)))
	if err != nil {
		return pack(mustJSON(Invalid("the output cannot be written as JSON: " + err.Error())))
	}
	return pack(out)
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// clean turns NaN and infinities (which JSON cannot hold) into null in maps and slices of any.
func clean(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case map[string]any:
		for k, e := range x {
			x[k] = clean(e)
		}
	case []any:
		for i, e := range x {
			x[i] = clean(e)
		}
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = clean(e)
		}
		return out
	}
	return v
}

// Verdict is the output {"valid": false, "errors": [...]}: the step fails with validation_failed.
type Verdict struct {
	Valid  bool     `json:"valid"`
	Errors []string `json:"errors"`
}

// Invalid is the verdict of a module that found the data invalid.
func Invalid(errs ...string) Verdict {
	if errs == nil {
		errs = []string{}
	}
	return Verdict{Valid: false, Errors: errs}
}

// Route adds "next_step" to an output map (docs/jobs.md) and returns it.
func Route(out map[string]any, step string) map[string]any {
	out["next_step"] = step
	return out
}

// Log levels of the host's log.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// Log writes one line at a level, printf style.
func Log(level int32, format string, args ...any) {
	b := []byte(fmt.Sprintf(format, args...))
	hostLog(level, ptrOf(b), int32(len(b)))
	runtime.KeepAlive(b)
}

func Debug(format string, args ...any) { Log(LevelDebug, format, args...) }
func Info(format string, args ...any)  { Log(LevelInfo, format, args...) }
func Warn(format string, args ...any)  { Log(LevelWarn, format, args...) }
func Error(format string, args ...any) { Log(LevelError, format, args...) }

// GetContext is a value of the job context (docs/abi.md, "What get_context reads"): "" the whole
// context, a bare key a variable or an earlier SetContext, a dotted path a path; false when missing.
func GetContext(key string) (Value, bool) {
	k := []byte(key)
	r := hostGetContext(ptrOf(k), int32(len(k)))
	runtime.KeepAlive(k)
	if r == 0 {
		return Value{}, false
	}
	v, err := ParseValue(unpacked(r))
	return v, err == nil
}

// Why SetContext refused a value.
var (
	ErrContextInvalid  = errors.New("set_context: the key or the value is not JSON (or the key is over 4 KiB)")
	ErrContextTooLarge = errors.New("set_context: the run's writes would pass 4 MiB")
)

// SetContext records a value (anything encoding/json writes) under key for later steps.
func SetContext(key string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return SetContextRaw(key, b)
}

// SetContextRaw records JSON text as it is.
func SetContextRaw(key string, jsonText []byte) error {
	k := []byte(key)
	r := hostSetContext(ptrOf(k), int32(len(k)), ptrOf(jsonText), int32(len(jsonText)))
	runtime.KeepAlive(k)
	runtime.KeepAlive(jsonText)
	switch r {
	case 0:
		return nil
	case 2:
		return ErrContextTooLarge
	}
	return ErrContextInvalid
}
