package vecron

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Value is a JSON value as encoding/json reads it (nil, bool, float64, string, []any,
// map[string]any), with accessors that never fail: a missing member is a null Value.
type Value struct{ v any }

// ValueOf wraps what encoding/json decoded (or any value built the same way).
func ValueOf(v any) Value { return Value{v} }

// ParseValue parses JSON text.
func ParseValue(b []byte) (Value, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return Value{}, err
	}
	return Value{v}, nil
}

// Raw is the value as encoding/json decoded it.
func (v Value) Raw() any { return v.v }

// Get is member key of an object (null when this is not an object or has no such member).
func (v Value) Get(key string) Value {
	if m, ok := v.v.(map[string]any); ok {
		return Value{m[key]}
	}
	return Value{}
}

// At is element i of an array (null when out of range).
func (v Value) At(i int) Value {
	if a, ok := v.v.([]any); ok && i >= 0 && i < len(a) {
		return Value{a[i]}
	}
	return Value{}
}

// Path follows a dotted path: "order.items.0.sku" (array elements by index).
func (v Value) Path(p string) Value {
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			continue
		}
		if _, ok := v.v.([]any); ok {
			i, err := strconv.Atoi(part)
			if err != nil {
				return Value{}
			}
			v = v.At(i)
		} else {
			v = v.Get(part)
		}
	}
	return v
}

func (v Value) IsNull() bool { return v.v == nil }

// String is the string, and whether this is one.
func (v Value) String() (string, bool) { s, ok := v.v.(string); return s, ok }

// Float is the number, and whether this is one.
func (v Value) Float() (float64, bool) { f, ok := v.v.(float64); return f, ok }

// Int is a whole number within ±2^53 (what a JSON number carries exactly), and whether this is one.
func (v Value) Int() (int64, bool) {
	f, ok := v.v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 9007199254740992 {
		return 0, false
	}
	return int64(f), true
}

func (v Value) Bool() (bool, bool) { b, ok := v.v.(bool); return b, ok }

// Array is the elements (nil when this is not an array).
func (v Value) Array() []Value {
	a, _ := v.v.([]any)
	out := make([]Value, len(a))
	for i, x := range a {
		out[i] = Value{x}
	}
	return out
}

// Object is the members (nil when this is not an object).
func (v Value) Object() map[string]any { m, _ := v.v.(map[string]any); return m }

func (v Value) IsArray() bool  { _, ok := v.v.([]any); return ok }
func (v Value) IsObject() bool { _, ok := v.v.(map[string]any); return ok }

// Len is the number of elements of an array or members of an object; 0 for anything else.
func (v Value) Len() int {
	switch x := v.v.(type) {
	case []any:
		return len(x)
	case map[string]any:
		return len(x)
	}
	return 0
}

// Decode fills a Go value (a struct with json tags) from this one.
func (v Value) Decode(out any) error {
	b, err := json.Marshal(v.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// MarshalJSON writes the value back.
func (v Value) MarshalJSON() ([]byte, error) { return json.Marshal(v.v) }
