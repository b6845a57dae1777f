package amf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
)

// equalValues reports whether a and b are the same decoded value. Numbers
// compare by their bits, so NaN equals the same NaN and -0 differs from 0;
// a nil and an empty container are equal.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case Date:
		y, ok := b.(Date)
		return ok && math.Float64bits(x.Millis) == math.Float64bits(y.Millis) && x.TimeZone == y.TimeZone
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case Object:
		y, ok := b.(Object)
		return ok && equalProperties(x, y)
	case ECMAArray:
		y, ok := b.(ECMAArray)
		return ok && equalProperties(x, y)
	case TypedObject:
		y, ok := b.(TypedObject)
		return ok && x.ClassName == y.ClassName && equalProperties(x.Object, y.Object)
	case StrictArray:
		y, ok := b.(StrictArray)
		return ok && equalSlices(x, y)
	case nil, Undefined, bool, string, XMLDocument:
		return a == b
	}
	return false
}

func equalProperties(a, b []Property) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !equalValues(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func equalSlices(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalValues(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestDecodeAMF0(t *testing.T) {
	for _, tc := range amf0Values {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := DecodeAMF0(tc.input)
			if err != nil {
				t.Fatalf("DecodeAMF0: %v", err)
			}
			if n != len(tc.input) {
				t.Errorf("consumed %d bytes, want %d", n, len(tc.input))
			}
			if !equalValues(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeAMF0All(t *testing.T) {
	for _, tc := range amf0Messages {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeAMF0All(tc.input)
			if err != nil {
				t.Fatalf("DecodeAMF0All: %v", err)
			}
			if !equalSlices(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		got, err := DecodeAMF0All(nil)
		if err != nil || len(got) != 0 {
			t.Errorf("got %#v, %v; want no values and no error", got, err)
		}
	})
}

func TestDecodeAMF0StopsAfterOneValue(t *testing.T) {
	v, n, err := DecodeAMF0(connectCommand)
	if err != nil {
		t.Fatal(err)
	}
	if v != "connect" || n != 10 {
		t.Errorf("got %#v after %d bytes, want \"connect\" after 10", v, n)
	}
}

func TestDecodeAMF3(t *testing.T) {
	for _, tc := range amf3Values {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := DecodeAMF3(tc.input)
			if err != nil {
				t.Fatalf("DecodeAMF3: %v", err)
			}
			if n != len(tc.input) {
				t.Errorf("consumed %d bytes, want %d", n, len(tc.input))
			}
			if !equalValues(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestAppendAMF0(t *testing.T) {
	tests := []struct {
		name  string
		input any
		want  []byte
	}{
		{"null", nil, raw(0x05)},
		{"undefined", Undefined{}, raw(0x06)},
		{"false", false, raw(0x01, 0x00)},
		{"true", true, raw(0x01, 0x01)},
		{"float64", 1.5, cat(raw(0x00), double1p5)},
		{"float64 negative zero", negativeZero, cat(raw(0x00), doubleNeg0)},
		{"float64 NaN keeps its payload", nanPayload, cat(raw(0x00), doubleNaN)},
		{"float64 -Inf", math.Inf(-1), cat(raw(0x00), doubleNegIn)},
		{"float32", float32(1.5), cat(raw(0x00), double1p5)},
		{"int", 1, cat(raw(0x00), double1)},
		{"int8", int8(2), cat(raw(0x00), double2)},
		{"int16", int16(7), cat(raw(0x00), double7)},
		{"int32", int32(10), cat(raw(0x00), double10)},
		{"int64", int64(16), cat(raw(0x00), double16)},
		{"uint", uint(30), cat(raw(0x00), double30)},
		{"uint8", uint8(128), cat(raw(0x00), double128)},
		{"uint16", uint16(720), cat(raw(0x00), double720)},
		{"uint32", uint32(1280), cat(raw(0x00), double1280)},
		{"uint64", uint64(2500), cat(raw(0x00), double2500)},
		{"string empty", "", raw(0x02, 0x00, 0x00)},
		{"string", "hello", cat(raw(0x02, 0x00, 0x05), []byte("hello"))},
		{"string of 65535 bytes", longString[:65535], cat(raw(0x02, 0xff, 0xff), []byte(longString[:65535]))},
		{"string of 65536 bytes", longString, cat(raw(0x0c, 0x00, 0x01, 0x00, 0x00), []byte(longString))},
		{"XML document", XMLDocument("<a/>"), cat(raw(0x0f, 0x00, 0x00, 0x00, 0x04), []byte("<a/>"))},
		{"date", Date{Millis: 1.7e12, TimeZone: -120}, cat(raw(0x0b), doubleDate, raw(0xff, 0x88))},
		{"object empty", Object{}, raw(0x03, 0x00, 0x00, 0x09)},
		{"object nil", Object(nil), raw(0x03, 0x00, 0x00, 0x09)},
		{"object with empty key", Object{{Key: "", Value: nil}}, raw(0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x09)},
		{"typed object", TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 1}}}, cat(
			raw(0x10, 0x00, 0x03), []byte("Foo"),
			raw(0x00, 0x01), []byte("x"), raw(0x00), double1,
			raw(0x00, 0x00, 0x09),
		)},
		{"ECMA array writes its count", ECMAArray{{Key: "a", Value: 2}}, cat(
			raw(0x08, 0x00, 0x00, 0x00, 0x01),
			raw(0x00, 0x01), []byte("a"), raw(0x00), double2,
			raw(0x00, 0x00, 0x09),
		)},
		{"strict array", StrictArray{1, "b", nil}, cat(
			raw(0x0a, 0x00, 0x00, 0x00, 0x03),
			raw(0x00), double1,
			raw(0x02, 0x00, 0x01), []byte("b"),
			raw(0x05),
		)},
		{"byte array through AMF3", []byte{1, 2, 3}, raw(0x11, 0x0c, 0x07, 0x01, 0x02, 0x03)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := AppendAMF0(prefix, tc.input)
			if err != nil {
				t.Fatalf("AppendAMF0: %v", err)
			}
			if !bytes.Equal(got, cat(prefix, tc.want)) {
				t.Errorf("got\n% x\nwant\n% x", got, cat(prefix, tc.want))
			}
		})
	}
}

func TestAppendAMF0All(t *testing.T) {
	tests := []struct {
		name  string
		input []any
		want  []byte
	}{
		// The command object is given with Go ints where the wire has doubles.
		{"ffmpeg connect", []any{"connect", 1, connectValues[2]}, connectCommand},
		{"ffmpeg @setDataFrame onMetaData", setDataFrameValues, setDataFrame},
		{"nothing", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendAMF0All(nil, tc.input...)
			if err != nil {
				t.Fatalf("AppendAMF0All: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got\n% x\nwant\n% x", got, tc.want)
			}
		})
	}
}

func TestAppendAMF3(t *testing.T) {
	tests := []struct {
		name  string
		input any
		want  []byte
	}{
		{"null", nil, raw(0x01)},
		{"undefined", Undefined{}, raw(0x00)},
		{"false", false, raw(0x02)},
		{"true", true, raw(0x03)},
		{"integer 0", 0, raw(0x04, 0x00)},
		{"integer 127", int8(127), raw(0x04, 0x7f)},
		{"integer 128", uint8(128), raw(0x04, 0x81, 0x00)},
		{"integer 16383", int16(16383), raw(0x04, 0xff, 0x7f)},
		{"integer 16384", uint16(16384), raw(0x04, 0x81, 0x80, 0x00)},
		{"integer 2097151", int32(2097151), raw(0x04, 0xff, 0xff, 0x7f)},
		{"integer 2097152", uint32(2097152), raw(0x04, 0x80, 0xc0, 0x80, 0x00)},
		{"integer max", int64(maxInt29), raw(0x04, 0xbf, 0xff, 0xff, 0xff)},
		{"integer -1", -1, raw(0x04, 0xff, 0xff, 0xff, 0xff)},
		{"integer min", minInt29, raw(0x04, 0xc0, 0x80, 0x80, 0x00)},
		{"integer above the range is a double", maxInt29 + 1, raw(0x05, 0x41, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)},
		{"uint64 beyond int64 is a double", uint64(1 << 63), raw(0x05, 0x43, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)},
		{"whole float64 is an integer", 7.0, raw(0x04, 0x07)},
		{"whole negative float32 is an integer", float32(-1), raw(0x04, 0xff, 0xff, 0xff, 0xff)},
		{"fractional float64", 1.5, cat(raw(0x05), double1p5)},
		{"negative zero stays a double", negativeZero, cat(raw(0x05), doubleNeg0)},
		{"NaN", nanPayload, cat(raw(0x05), doubleNaN)},
		{"+Inf", math.Inf(1), cat(raw(0x05), doubleInf)},
		{"string empty", "", raw(0x06, 0x01)},
		{"string", "hello", cat(raw(0x06, 0x0b), []byte("hello"))},
		{"XML document", XMLDocument("<a/>"), cat(raw(0x07, 0x09), []byte("<a/>"))},
		{"date drops its time zone", Date{Millis: 1.7e12, TimeZone: 60}, cat(raw(0x08, 0x01), doubleDate)},
		{"byte array", []byte{1, 2, 3}, raw(0x0c, 0x07, 0x01, 0x02, 0x03)},
		{"byte array empty", []byte{}, raw(0x0c, 0x01)},
		{"strict array", StrictArray{1, 2, 3}, raw(0x09, 0x07, 0x01, 0x04, 0x01, 0x04, 0x02, 0x04, 0x03)},
		{"strict array empty", StrictArray{}, raw(0x09, 0x01, 0x01)},
		{"ECMA array", ECMAArray{{Key: "k", Value: 1}}, cat(raw(0x09, 0x01, 0x03), []byte("k"), raw(0x04, 0x01, 0x01))},
		{"object", Object{{Key: "a", Value: 1}}, cat(raw(0x0a, 0x0b, 0x01, 0x03), []byte("a"), raw(0x04, 0x01, 0x01))},
		{"typed object", TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 5}}}, cat(
			raw(0x0a, 0x0b, 0x07), []byte("Foo"),
			raw(0x03), []byte("x"), raw(0x04, 0x05),
			raw(0x01),
		)},
		{"object with an empty key is sealed", Object{{Key: "", Value: 1}, {Key: "b", Value: true}}, cat(
			raw(0x0a, 0x23, 0x01), // two sealed members, no class name
			raw(0x01, 0x03), []byte("b"),
			raw(0x04, 0x01, 0x03),
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := AppendAMF3(prefix, tc.input)
			if err != nil {
				t.Fatalf("AppendAMF3: %v", err)
			}
			if !bytes.Equal(got, cat(prefix, tc.want)) {
				t.Errorf("got\n% x\nwant\n% x", got, cat(prefix, tc.want))
			}
		})
	}
}

// nested returns a value nested depth containers deep.
func nested(depth int) any {
	var v any = "leaf"
	for range depth {
		v = StrictArray{v}
	}
	return v
}

// roundTripValues are decoded-form values that encode and decode back to
// themselves in both formats, besides the table vectors' values.
var roundTripValues = []struct {
	name  string
	input any
}{
	{"deepest nesting allowed", nested(MaxDepth)},
	{"most members allowed", func() any {
		obj := make(Object, MaxProperties)
		for i := range obj {
			obj[i] = Property{Key: fmt.Sprint(i), Value: float64(i)}
		}
		return obj
	}()},
	{"mixed", Object{
		{Key: "list", Value: StrictArray{1.0, "two", nil, Undefined{}, false, []byte{3}}},
		{Key: "map", Value: ECMAArray{{Key: "when", Value: Date{Millis: -1}}, {Key: "xml", Value: XMLDocument("<x/>")}}},
		{Key: "typed", Value: TypedObject{ClassName: "a.b.C", Object: Object{{Key: "n", Value: math.MaxFloat64}}}},
		{Key: "small", Value: math.SmallestNonzeroFloat64},
		{Key: "", Value: "empty key"},
	}},
}

// amf3Form returns what v becomes after AppendAMF3 and DecodeAMF3, as
// AppendAMF3 documents: dates lose their time zone, typed objects without a
// class name become objects and empty ECMA arrays become strict arrays.
func amf3Form(v any) any {
	switch x := v.(type) {
	case Date:
		return Date{Millis: x.Millis}
	case Object:
		return Object(propertiesAMF3Form(x))
	case TypedObject:
		if x.ClassName == "" {
			return Object(propertiesAMF3Form(x.Object))
		}
		return TypedObject{ClassName: x.ClassName, Object: propertiesAMF3Form(x.Object)}
	case ECMAArray:
		if len(x) == 0 {
			return StrictArray{}
		}
		return ECMAArray(propertiesAMF3Form(x))
	case StrictArray:
		out := make(StrictArray, len(x))
		for i, e := range x {
			out[i] = amf3Form(e)
		}
		return out
	}
	return v
}

func propertiesAMF3Form(props []Property) []Property {
	out := make([]Property, len(props))
	for i, p := range props {
		out[i] = Property{Key: p.Key, Value: amf3Form(p.Value)}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	type value struct {
		name string
		v    any
	}
	var values []value
	for _, tc := range amf0Values {
		values = append(values, value{"AMF0 " + tc.name, tc.want})
	}
	for _, tc := range amf3Values {
		values = append(values, value{"AMF3 " + tc.name, tc.want})
	}
	for _, tc := range amf0Messages {
		for i, v := range tc.want {
			values = append(values, value{fmt.Sprintf("%s value %d", tc.name, i), v})
		}
	}
	for _, tc := range roundTripValues {
		values = append(values, value{tc.name, tc.input})
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := AppendAMF0(nil, tc.v)
			if err != nil {
				t.Fatalf("AppendAMF0: %v", err)
			}
			got, n, err := DecodeAMF0(enc)
			if err != nil || n != len(enc) || !equalValues(got, tc.v) {
				t.Errorf("AMF0: got %#v after %d of %d bytes, %v; want %#v", got, n, len(enc), err, tc.v)
			}

			enc, err = AppendAMF3(nil, tc.v)
			if err != nil {
				t.Fatalf("AppendAMF3: %v", err)
			}
			want := amf3Form(tc.v)
			got, n, err = DecodeAMF3(enc)
			if err != nil || n != len(enc) || !equalValues(got, want) {
				t.Errorf("AMF3: got %#v after %d of %d bytes, %v; want %#v", got, n, len(enc), err, want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	check := func(t *testing.T, decode func([]byte) (any, int, error), tc errorCase) {
		t.Helper()
		v, n, err := decode(tc.input)
		if !errors.Is(err, tc.want) {
			t.Fatalf("got error %v, want %v", err, tc.want)
		}
		if v != nil || n != 0 {
			t.Errorf("got %#v and %d bytes with the error, want nil and 0", v, n)
		}
		if !strings.HasPrefix(err.Error(), "amf: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	for _, tc := range amf0Errors {
		t.Run("AMF0 "+tc.name, func(t *testing.T) {
			check(t, DecodeAMF0, tc)
			if _, err := DecodeAMF0All(tc.input); len(tc.input) > 0 && !errors.Is(err, tc.want) {
				t.Errorf("DecodeAMF0All: got error %v, want %v", err, tc.want)
			}
		})
	}
	for _, tc := range amf3Errors {
		t.Run("AMF3 "+tc.name, func(t *testing.T) {
			check(t, DecodeAMF3, tc)
			// The same bytes behind the AMF0 switch marker fail the same way.
			if _, _, err := DecodeAMF0(cat(raw(marker0AVMPlus), tc.input)); !errors.Is(err, tc.want) {
				t.Errorf("after 0x11: got error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeAMF0AllErrors(t *testing.T) {
	tests := []errorCase{
		{"reference deeper than allowed", cat(
			bytes.Repeat(raw(0x0a, 0x00, 0x00, 0x00, 0x01), MaxDepth), raw(0x05), // reference 0, 32 levels
			raw(0x0a, 0x00, 0x00, 0x00, 0x01, 0x07, 0x00, 0x00), // [reference 0]: 33 levels
		), ErrTooDeep},
		{"error in a later value", cat(connectCommand, raw(0x12)), ErrUnknownMarker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeAMF0All(tc.input)
			if !errors.Is(err, tc.want) || got != nil {
				t.Errorf("got %#v, %v; want nil, %v", got, err, tc.want)
			}
		})
	}
}

func TestReferenceAtDepthLimit(t *testing.T) {
	input := cat(
		bytes.Repeat(raw(0x0a, 0x00, 0x00, 0x00, 0x01), MaxDepth-1), raw(0x05), // reference 0, 31 levels
		raw(0x0a, 0x00, 0x00, 0x00, 0x01, 0x07, 0x00, 0x00), // [reference 0]: 32 levels
	)
	got, err := DecodeAMF0All(input)
	if err != nil {
		t.Fatal(err)
	}
	if want := (StrictArray{got[0]}); !equalValues(got[1], want) {
		t.Errorf("got %#v, want %#v", got[1], want)
	}
	// The referenced tree is within the limit, so it encodes again.
	if _, err := AppendAMF0All(nil, got...); err != nil {
		t.Errorf("AppendAMF0All: %v", err)
	}
}

func TestReferenceTablesKeepMaxReferences(t *testing.T) {
	// MaxReferences+1 distinct strings in 17 arrays of up to 4096, then a
	// reference to the first and one to the last.
	build := func(lastRef uint32) []byte {
		const perArray = MaxProperties
		arrays := (MaxReferences + perArray) / perArray
		out := appendU29(raw(0x09), uint32(arrays+2)<<1|1)
		out = append(out, 0x01)
		s := 0
		for range arrays {
			n := min(perArray, MaxReferences+1-s)
			out = appendU29(append(out, 0x09), uint32(n)<<1|1)
			out = append(out, 0x01)
			for range n {
				out = append(out, 0x06, 3<<1|1, byte(s>>16), byte(s>>8), byte(s))
				s++
			}
		}
		out = append(out, 0x06, 0x00)
		return appendU29(append(out, 0x06), lastRef<<1)
	}
	v, _, err := DecodeAMF3(build(MaxReferences - 1))
	if err != nil {
		t.Fatalf("reference to the last kept string: %v", err)
	}
	arr := v.(StrictArray)
	if got, want := arr[len(arr)-2], string([]byte{0, 0, 0}); got != want {
		t.Errorf("first string by reference: got %q, want %q", got, want)
	}
	if got, want := arr[len(arr)-1], string([]byte{0, 0xff, 0xff}); got != want {
		t.Errorf("last kept string by reference: got %q, want %q", got, want)
	}
	if _, _, err := DecodeAMF3(build(MaxReferences)); !errors.Is(err, ErrBadReference) {
		t.Errorf("reference past the kept strings: got %v, want %v", err, ErrBadReference)
	}
}

func TestClaimsAllocateLittle(t *testing.T) {
	var inputs [][]byte
	for _, cases := range [][]errorCase{amf0Errors, amf3Errors} {
		for _, tc := range cases {
			if tc.want == ErrTooLarge && len(tc.input) < 64 {
				inputs = append(inputs, tc.input)
			}
		}
	}
	inputs = append(inputs,
		raw(0x08, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x09), // ECMA array claiming 4G members
		raw(0x09, 0xc0, 0x01, 0x03, 0x6b),                   // AMF3 array claiming 4096 members, cut short
	)
	for _, input := range inputs {
		const runs = 20
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			DecodeAMF0(input)
			DecodeAMF3(input)
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 2048 {
			t.Errorf("% x: %d bytes allocated per decode", input, perRun)
		}
	}
}

// decodeBoundaries returns the offsets at which the values of an AMF0
// message end.
func decodeBoundaries(t *testing.T, input []byte) []int {
	t.Helper()
	d := decoder{b: input}
	var ends []int
	for d.off < len(d.b) {
		if _, err := d.value0(); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, d.off)
	}
	return ends
}

func TestTruncation(t *testing.T) {
	checkPrefixes := func(t *testing.T, input []byte, decode func([]byte) (any, int, error)) {
		for i := range len(input) {
			_, _, err := decode(input[:i])
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("prefix of %d bytes: got error %v, want %v or %v", i, err, ErrShort, ErrTooLarge)
			}
		}
	}
	for _, tc := range amf0Values {
		t.Run("AMF0 "+tc.name, func(t *testing.T) { checkPrefixes(t, tc.input, DecodeAMF0) })
	}
	for _, tc := range amf3Values {
		t.Run("AMF3 "+tc.name, func(t *testing.T) { checkPrefixes(t, tc.input, DecodeAMF3) })
	}
	for _, tc := range amf0Messages {
		t.Run("message "+tc.name, func(t *testing.T) {
			ends := decodeBoundaries(t, tc.input)
			complete := 0
			for i := range len(tc.input) {
				for complete < len(ends) && ends[complete] <= i {
					complete++
				}
				got, err := DecodeAMF0All(tc.input[:i])
				if i == 0 || (complete > 0 && ends[complete-1] == i) {
					if err != nil || !equalSlices(got, tc.want[:complete]) {
						t.Fatalf("prefix of %d bytes ending value %d: got %#v, %v", i, complete, got, err)
					}
					continue
				}
				if !errors.Is(err, ErrShort) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("prefix of %d bytes: got error %v, want %v or %v", i, err, ErrShort, ErrTooLarge)
				}
			}
		})
	}
}

func TestDecodedValuesDoNotShareInput(t *testing.T) {
	input := raw(0x0c, 0x07, 0x01, 0x02, 0x03)
	v, _, err := DecodeAMF3(input)
	if err != nil {
		t.Fatal(err)
	}
	clear(input)
	if !equalValues(v, []byte{1, 2, 3}) {
		t.Errorf("decoded byte array changed with its input: %v", v)
	}
}

func TestAppendErrors(t *testing.T) {
	cyclic := StrictArray{nil}
	cyclic[0] = cyclic
	tooMany := make(Object, MaxProperties+1)
	for i := range tooMany {
		tooMany[i].Key = "k"
	}
	long := strings.Repeat("k", math.MaxUint16+1)
	tests := []struct {
		name      string
		input     any
		wantAMF0  error // nil: encodes
		wantAMF3  error
		appendAll bool
	}{
		{"channel", make(chan int), ErrUnsupportedType, ErrUnsupportedType, false},
		{"map", map[string]any{"a": 1}, ErrUnsupportedType, ErrUnsupportedType, false},
		{"slice of any", []any{1}, ErrUnsupportedType, ErrUnsupportedType, false},
		{"pointer to an object", &Object{}, ErrUnsupportedType, ErrUnsupportedType, false},
		{"unsupported member", Object{{Key: "a", Value: struct{}{}}}, ErrUnsupportedType, ErrUnsupportedType, false},
		{"too deep", nested(MaxDepth + 1), ErrTooDeep, ErrTooDeep, false},
		{"contains itself", cyclic, ErrTooDeep, ErrTooDeep, false},
		{"too many members", tooMany, ErrTooLarge, ErrTooLarge, false},
		{"too many elements", make(StrictArray, MaxProperties+1), ErrTooLarge, ErrTooLarge, false},
		{"too many ECMA array members", ECMAArray(tooMany), ErrTooLarge, ErrTooLarge, false},
		{"long key", Object{{Key: long}}, ErrTooLarge, nil, false},
		{"long class name", TypedObject{ClassName: long}, ErrTooLarge, nil, false},
		{"ECMA array with an empty key", ECMAArray{{Key: ""}}, nil, ErrUnsupportedType, false},
		{"later value unsupported", []any{"ok", make(chan int)}, ErrUnsupportedType, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, 3, 64)
			var got []byte
			var err error
			if tc.appendAll {
				got, err = AppendAMF0All(dst, tc.input.([]any)...)
			} else {
				got, err = AppendAMF0(dst, tc.input)
			}
			if !errors.Is(err, tc.wantAMF0) || (err == nil) != (tc.wantAMF0 == nil) {
				t.Errorf("AMF0: got error %v, want %v", err, tc.wantAMF0)
			}
			if err != nil && len(got) != len(dst) {
				t.Errorf("AMF0: got %d bytes back with the error, want dst's %d", len(got), len(dst))
			}
			if tc.appendAll {
				return
			}
			got, err = AppendAMF3(dst, tc.input)
			if !errors.Is(err, tc.wantAMF3) || (err == nil) != (tc.wantAMF3 == nil) {
				t.Errorf("AMF3: got error %v, want %v", err, tc.wantAMF3)
			}
			if err != nil && len(got) != len(dst) {
				t.Errorf("AMF3: got %d bytes back with the error, want dst's %d", len(got), len(dst))
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	cmd := connectValues[2].(Object)
	if got := cmd.String("app"); got != "live" {
		t.Errorf(`String("app") = %q, want "live"`, got)
	}
	if got := cmd.String("missing"); got != "" {
		t.Errorf(`String("missing") = %q, want ""`, got)
	}
	if v, ok := cmd.Get("tcUrl"); !ok || v != "rtmp://127.0.0.1:1935/live" {
		t.Errorf(`Get("tcUrl") = %#v, %v`, v, ok)
	}
	if v, ok := cmd.Get("missing"); ok || v != nil {
		t.Errorf(`Get("missing") = %#v, %v; want nil, false`, v, ok)
	}
	if _, ok := cmd.Number("app"); ok {
		t.Error(`Number("app") reported a number for a string`)
	}

	meta := setDataFrameValues[2].(ECMAArray)
	if got, ok := meta.Number("width"); !ok || got != 1280 {
		t.Errorf(`Number("width") = %v, %v; want 1280, true`, got, ok)
	}
	if got := meta.String("encoder"); got != "Lavf61.7.100" {
		t.Errorf(`String("encoder") = %q`, got)
	}
	if got := meta.String("width"); got != "" {
		t.Errorf(`String("width") = %q for a number, want ""`, got)
	}
	if v, ok := meta.Get("stereo"); !ok || v != true {
		t.Errorf(`Get("stereo") = %#v, %v`, v, ok)
	}

	repeated := Object{{Key: "k", Value: 1.0}, {Key: "k", Value: 2.0}}
	if got, _ := repeated.Number("k"); got != 1 {
		t.Errorf("repeated key: got %v, want the first value 1", got)
	}
}

func BenchmarkDecodeConnect(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(connectCommand)))
	for b.Loop() {
		if _, err := DecodeAMF0All(connectCommand); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendConnect(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(connectCommand)))
	buf := make([]byte, 0, len(connectCommand))
	for b.Loop() {
		var err error
		if buf, err = AppendAMF0All(buf[:0], connectValues...); err != nil {
			b.Fatal(err)
		}
	}
}
