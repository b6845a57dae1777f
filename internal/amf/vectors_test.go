package amf

import (
	"bytes"
	"math"
)

// The byte vectors below are written out from the AMF0 and AMF3
// specifications: markers, big-endian lengths and IEEE 754 doubles are
// spelled byte by byte.

// cat joins byte slices.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// raw is a short name for a byte literal.
func raw(b ...byte) []byte { return b }

// Doubles used by the vectors, big-endian IEEE 754.
var (
	double0     = raw(0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double1     = raw(0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double1p5   = raw(0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double2     = raw(0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double7     = raw(0x40, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double10    = raw(0x40, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double16    = raw(0x40, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double30    = raw(0x40, 0x3e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double128   = raw(0x40, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double720   = raw(0x40, 0x86, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00)
	double1280  = raw(0x40, 0x94, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	double2500  = raw(0x40, 0xa3, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00)
	double44100 = raw(0x40, 0xe5, 0x88, 0x80, 0x00, 0x00, 0x00, 0x00)
	doubleNeg0  = raw(0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	doubleInf   = raw(0x7f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	doubleNegIn = raw(0xff, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
	doubleNaN   = raw(0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01) // quiet NaN with a payload
	doubleDate  = raw(0x42, 0x78, 0xbc, 0xfe, 0x56, 0x80, 0x00, 0x00) // 1.7e12 ms
)

var (
	negativeZero = math.Copysign(0, -1)
	nanPayload   = math.Float64frombits(0x7ff8000000000001)
)

// connectCommand is the connect command ffmpeg sends when publishing to
// rtmp://127.0.0.1:1935/live/<key> (libavformat's RTMP muxer, Lavf 61.7.100).
var connectCommand = cat(
	raw(0x02, 0x00, 0x07), []byte("connect"),
	raw(0x00), double1, // transaction id 1
	raw(0x03), // command object
	raw(0x00, 0x03), []byte("app"), raw(0x02, 0x00, 0x04), []byte("live"),
	raw(0x00, 0x04), []byte("type"), raw(0x02, 0x00, 0x0a), []byte("nonprivate"),
	raw(0x00, 0x08), []byte("flashVer"), raw(0x02, 0x00, 0x23), []byte("FMLE/3.0 (compatible; Lavf61.7.100)"),
	raw(0x00, 0x05), []byte("tcUrl"), raw(0x02, 0x00, 0x1a), []byte("rtmp://127.0.0.1:1935/live"),
	raw(0x00, 0x00, 0x09),
)

var connectValues = []any{
	"connect",
	1.0,
	Object{
		{Key: "app", Value: "live"},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: "FMLE/3.0 (compatible; Lavf61.7.100)"},
		{Key: "tcUrl", Value: "rtmp://127.0.0.1:1935/live"},
	},
}

// setDataFrame is the @setDataFrame data message with onMetaData that ffmpeg
// sends for a 1280x720 30 fps H.264 + AAC 44.1 kHz stereo stream. The ECMA
// array count (13) is the number of members that follow.
var setDataFrame = cat(
	raw(0x02, 0x00, 0x0d), []byte("@setDataFrame"),
	raw(0x02, 0x00, 0x0a), []byte("onMetaData"),
	raw(0x08, 0x00, 0x00, 0x00, 0x0d),
	raw(0x00, 0x08), []byte("duration"), raw(0x00), double0,
	raw(0x00, 0x05), []byte("width"), raw(0x00), double1280,
	raw(0x00, 0x06), []byte("height"), raw(0x00), double720,
	raw(0x00, 0x0d), []byte("videodatarate"), raw(0x00), double2500,
	raw(0x00, 0x09), []byte("framerate"), raw(0x00), double30,
	raw(0x00, 0x0c), []byte("videocodecid"), raw(0x00), double7,
	raw(0x00, 0x0d), []byte("audiodatarate"), raw(0x00), double128,
	raw(0x00, 0x0f), []byte("audiosamplerate"), raw(0x00), double44100,
	raw(0x00, 0x0f), []byte("audiosamplesize"), raw(0x00), double16,
	raw(0x00, 0x06), []byte("stereo"), raw(0x01, 0x01),
	raw(0x00, 0x0c), []byte("audiocodecid"), raw(0x00), double10,
	raw(0x00, 0x07), []byte("encoder"), raw(0x02, 0x00, 0x0c), []byte("Lavf61.7.100"),
	raw(0x00, 0x08), []byte("filesize"), raw(0x00), double0,
	raw(0x00, 0x00, 0x09),
)

var setDataFrameValues = []any{
	"@setDataFrame",
	"onMetaData",
	ECMAArray{
		{Key: "duration", Value: 0.0},
		{Key: "width", Value: 1280.0},
		{Key: "height", Value: 720.0},
		{Key: "videodatarate", Value: 2500.0},
		{Key: "framerate", Value: 30.0},
		{Key: "videocodecid", Value: 7.0},
		{Key: "audiodatarate", Value: 128.0},
		{Key: "audiosamplerate", Value: 44100.0},
		{Key: "audiosamplesize", Value: 16.0},
		{Key: "stereo", Value: true},
		{Key: "audiocodecid", Value: 10.0},
		{Key: "encoder", Value: "Lavf61.7.100"},
		{Key: "filesize", Value: 0.0},
	},
}

var longString = string(bytes.Repeat([]byte("a"), 65536))

// amf0Values are single AMF0 values: input decodes to want with nothing
// left over.
var amf0Values = []struct {
	name  string
	input []byte
	want  any
}{
	{"number zero", cat(raw(0x00), double0), 0.0},
	{"number one and a half", cat(raw(0x00), double1p5), 1.5},
	{"number negative zero", cat(raw(0x00), doubleNeg0), negativeZero},
	{"number plus infinity", cat(raw(0x00), doubleInf), math.Inf(1)},
	{"number minus infinity", cat(raw(0x00), doubleNegIn), math.Inf(-1)},
	{"number NaN with payload", cat(raw(0x00), doubleNaN), nanPayload},
	{"boolean false", raw(0x01, 0x00), false},
	{"boolean true", raw(0x01, 0x01), true},
	{"boolean nonzero is true", raw(0x01, 0x02), true},
	{"string empty", raw(0x02, 0x00, 0x00), ""},
	{"string", cat(raw(0x02, 0x00, 0x05), []byte("hello")), "hello"},
	{"string UTF-8", raw(0x02, 0x00, 0x02, 0xc3, 0xa9), "é"},
	{"long string", cat(raw(0x0c, 0x00, 0x01, 0x00, 0x00), []byte(longString)), longString},
	{"long string holding a short one", cat(raw(0x0c, 0x00, 0x00, 0x00, 0x03), []byte("abc")), "abc"},
	{"null", raw(0x05), nil},
	{"undefined", raw(0x06), Undefined{}},
	{"object empty", raw(0x03, 0x00, 0x00, 0x09), Object{}},
	{"object with empty key", raw(0x03, 0x00, 0x00, 0x05, 0x00, 0x00, 0x09), Object{{Key: "", Value: nil}}},
	{"object with repeated key", cat(
		raw(0x03),
		raw(0x00, 0x01), []byte("k"), raw(0x01, 0x00),
		raw(0x00, 0x01), []byte("k"), raw(0x01, 0x01),
		raw(0x00, 0x00, 0x09),
	), Object{{Key: "k", Value: false}, {Key: "k", Value: true}}},
	{"object nested", cat(
		raw(0x03),
		raw(0x00, 0x05), []byte("level"), raw(0x00), double1,
		raw(0x00, 0x04), []byte("info"), raw(0x03),
		raw(0x00, 0x04), []byte("code"), raw(0x02, 0x00, 0x17), []byte("NetStream.Publish.Start"),
		raw(0x00, 0x00, 0x09),
		raw(0x00, 0x00, 0x09),
	), Object{
		{Key: "level", Value: 1.0},
		{Key: "info", Value: Object{{Key: "code", Value: "NetStream.Publish.Start"}}},
	}},
	{"typed object", cat(
		raw(0x10, 0x00, 0x03), []byte("Foo"),
		raw(0x00, 0x01), []byte("x"), raw(0x00), double1,
		raw(0x00, 0x00, 0x09),
	), TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 1.0}}}},
	{"typed object empty class", raw(0x10, 0x00, 0x00, 0x00, 0x00, 0x09), TypedObject{Object: Object{}}},
	{"ECMA array", cat(
		raw(0x08, 0x00, 0x00, 0x00, 0x01),
		raw(0x00, 0x01), []byte("a"), raw(0x00), double2,
		raw(0x00, 0x00, 0x09),
	), ECMAArray{{Key: "a", Value: 2.0}}},
	{"ECMA array empty", raw(0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09), ECMAArray{}},
	{"ECMA array count zero but members", cat(
		raw(0x08, 0x00, 0x00, 0x00, 0x00),
		raw(0x00, 0x01), []byte("a"), raw(0x05),
		raw(0x00, 0x01), []byte("b"), raw(0x06),
		raw(0x00, 0x00, 0x09),
	), ECMAArray{{Key: "a", Value: nil}, {Key: "b", Value: Undefined{}}}},
	{"ECMA array count too large", cat(
		raw(0x08, 0xff, 0xff, 0xff, 0xff),
		raw(0x00, 0x01), []byte("a"), raw(0x05),
		raw(0x00, 0x00, 0x09),
	), ECMAArray{{Key: "a", Value: nil}}},
	{"strict array empty", raw(0x0a, 0x00, 0x00, 0x00, 0x00), StrictArray{}},
	{"strict array", cat(
		raw(0x0a, 0x00, 0x00, 0x00, 0x03),
		raw(0x00), double1,
		raw(0x02, 0x00, 0x01), []byte("b"),
		raw(0x05),
	), StrictArray{1.0, "b", nil}},
	{"date", cat(raw(0x0b), doubleDate, raw(0x00, 0x00)), Date{Millis: 1.7e12}},
	{"date with time zone", cat(raw(0x0b), doubleDate, raw(0xff, 0x88)), Date{Millis: 1.7e12, TimeZone: -120}},
	{"XML document", cat(raw(0x0f, 0x00, 0x00, 0x00, 0x07), []byte("<a></a>")), XMLDocument("<a></a>")},
	{"reference to an earlier object", cat(
		raw(0x0a, 0x00, 0x00, 0x00, 0x02), // reference 0
		raw(0x03),                         // reference 1
		raw(0x00, 0x01), []byte("a"), raw(0x00), double1,
		raw(0x00, 0x00, 0x09),
		raw(0x07, 0x00, 0x01),
	), StrictArray{Object{{Key: "a", Value: 1.0}}, Object{{Key: "a", Value: 1.0}}}},
	{"switch to AMF3 integer", raw(0x11, 0x04, 0x05), 5.0},
	{"switch to AMF3 string", cat(raw(0x11, 0x06, 0x0b), []byte("hello")), "hello"},
	{"switch to AMF3 byte array", raw(0x11, 0x0c, 0x07, 0x01, 0x02, 0x03), []byte{1, 2, 3}},
	{"switch to AMF3 inside an object", cat(
		raw(0x03),
		raw(0x00, 0x01), []byte("x"), raw(0x11, 0x0a, 0x0b, 0x01, 0x03), []byte("a"), raw(0x04, 0x01, 0x01),
		raw(0x00, 0x01), []byte("y"), raw(0x11, 0x06, 0x03), []byte("b"),
		raw(0x00, 0x00, 0x09),
	), Object{{Key: "x", Value: Object{{Key: "a", Value: 1.0}}}, {Key: "y", Value: "b"}}},
}

// amf0Messages are message bodies: input decodes to the values want.
var amf0Messages = []struct {
	name  string
	input []byte
	want  []any
}{
	{"ffmpeg connect", connectCommand, connectValues},
	{"ffmpeg @setDataFrame onMetaData", setDataFrame, setDataFrameValues},
	{"releaseStream", cat(
		raw(0x02, 0x00, 0x0d), []byte("releaseStream"),
		raw(0x00), double2,
		raw(0x05),
		raw(0x02, 0x00, 0x03), []byte("key"),
	), []any{"releaseStream", 2.0, nil, "key"}},
	{"publish", cat(
		raw(0x02, 0x00, 0x07), []byte("publish"),
		raw(0x00), double0,
		raw(0x05),
		raw(0x02, 0x00, 0x03), []byte("key"),
		raw(0x02, 0x00, 0x04), []byte("live"),
	), []any{"publish", 0.0, nil, "key", "live"}},
	{"_result of connect", cat(
		raw(0x02, 0x00, 0x07), []byte("_result"),
		raw(0x00), double1,
		raw(0x03),
		raw(0x00, 0x06), []byte("fmsVer"), raw(0x02, 0x00, 0x0d), []byte("FMS/3,0,1,123"),
		raw(0x00, 0x0c), []byte("capabilities"), raw(0x00), double30,
		raw(0x00, 0x00, 0x09),
		raw(0x03),
		raw(0x00, 0x05), []byte("level"), raw(0x02, 0x00, 0x06), []byte("status"),
		raw(0x00, 0x04), []byte("code"), raw(0x02, 0x00, 0x1d), []byte("NetConnection.Connect.Success"),
		raw(0x00, 0x0e), []byte("objectEncoding"), raw(0x00), double0,
		raw(0x00, 0x00, 0x09),
	), []any{
		"_result", 1.0,
		Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}, {Key: "capabilities", Value: 30.0}},
		Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "objectEncoding", Value: 0.0},
		},
	}},
	{"reference to an earlier value", cat(
		raw(0x03),
		raw(0x00, 0x01), []byte("a"), raw(0x00), double1,
		raw(0x00, 0x00, 0x09),
		raw(0x07, 0x00, 0x00),
	), []any{Object{{Key: "a", Value: 1.0}}, Object{{Key: "a", Value: 1.0}}}},
	{"AMF3 tables start empty at each switch", cat(
		raw(0x11, 0x06, 0x05), []byte("ab"),
		raw(0x11, 0x06, 0x05), []byte("cd"),
		raw(0x11, 0x09, 0x05, 0x01, 0x06, 0x05), []byte("ef"), raw(0x06, 0x00),
	), []any{"ab", "cd", StrictArray{"ef", "ef"}}},
}

// amf3Values are single AMF3 values: input decodes to want with nothing
// left over.
var amf3Values = []struct {
	name  string
	input []byte
	want  any
}{
	{"undefined", raw(0x00), Undefined{}},
	{"null", raw(0x01), nil},
	{"false", raw(0x02), false},
	{"true", raw(0x03), true},
	{"integer 0", raw(0x04, 0x00), 0.0},
	{"integer 127", raw(0x04, 0x7f), 127.0},
	{"integer 128", raw(0x04, 0x81, 0x00), 128.0},
	{"integer 16383", raw(0x04, 0xff, 0x7f), 16383.0},
	{"integer 16384", raw(0x04, 0x81, 0x80, 0x00), 16384.0},
	{"integer 2097151", raw(0x04, 0xff, 0xff, 0x7f), 2097151.0},
	{"integer 2097152", raw(0x04, 0x80, 0xc0, 0x80, 0x00), 2097152.0},
	{"integer max", raw(0x04, 0xbf, 0xff, 0xff, 0xff), float64(maxInt29)},
	{"integer -1", raw(0x04, 0xff, 0xff, 0xff, 0xff), -1.0},
	{"integer min", raw(0x04, 0xc0, 0x80, 0x80, 0x00), float64(minInt29)},
	{"integer in a longer form than needed", raw(0x04, 0x80, 0x05), 5.0},
	{"double", cat(raw(0x05), double1p5), 1.5},
	{"double negative zero", cat(raw(0x05), doubleNeg0), negativeZero},
	{"double NaN with payload", cat(raw(0x05), doubleNaN), nanPayload},
	{"double plus infinity", cat(raw(0x05), doubleInf), math.Inf(1)},
	{"double whole", cat(raw(0x05), double2), 2.0},
	{"string empty", raw(0x06, 0x01), ""},
	{"string", cat(raw(0x06, 0x0b), []byte("hello")), "hello"},
	{"string reference", cat(
		raw(0x09, 0x05, 0x01),
		raw(0x06, 0x05), []byte("ab"),
		raw(0x06, 0x00),
	), StrictArray{"ab", "ab"}},
	{"empty string is not a table entry", cat(
		raw(0x09, 0x07, 0x01),
		raw(0x06, 0x01),
		raw(0x06, 0x05), []byte("ab"),
		raw(0x06, 0x00),
	), StrictArray{"", "ab", "ab"}},
	{"XMLDocument", cat(raw(0x07, 0x09), []byte("<a/>")), XMLDocument("<a/>")},
	{"XML", cat(raw(0x0b, 0x09), []byte("<b/>")), XMLDocument("<b/>")},
	{"date", cat(raw(0x08, 0x01), doubleDate), Date{Millis: 1.7e12}},
	{"date reference", cat(
		raw(0x09, 0x05, 0x01),       // object 0
		raw(0x08, 0x01), doubleDate, // object 1
		raw(0x08, 0x02),
	), StrictArray{Date{Millis: 1.7e12}, Date{Millis: 1.7e12}}},
	{"byte array", raw(0x0c, 0x07, 0x01, 0x02, 0x03), []byte{1, 2, 3}},
	{"byte array empty", raw(0x0c, 0x01), []byte{}},
	{"array empty", raw(0x09, 0x01, 0x01), StrictArray{}},
	{"array dense", raw(0x09, 0x07, 0x01, 0x04, 0x01, 0x04, 0x02, 0x04, 0x03), StrictArray{1.0, 2.0, 3.0}},
	{"array named only", cat(raw(0x09, 0x01, 0x03), []byte("k"), raw(0x04, 0x01, 0x01)), ECMAArray{{Key: "k", Value: 1.0}}},
	{"array dense and named", cat(
		raw(0x09, 0x03),
		raw(0x03), []byte("k"), raw(0x06, 0x03), []byte("v"),
		raw(0x01),
		raw(0x04, 0x05),
	), ECMAArray{{Key: "0", Value: 5.0}, {Key: "k", Value: "v"}}},
	{"object anonymous dynamic", cat(raw(0x0a, 0x0b, 0x01, 0x03), []byte("a"), raw(0x04, 0x01, 0x01)), Object{{Key: "a", Value: 1.0}}},
	{"object empty", raw(0x0a, 0x0b, 0x01, 0x01), Object{}},
	{"object typed sealed", cat(
		raw(0x0a, 0x13, 0x07), []byte("Foo"),
		raw(0x03), []byte("x"),
		raw(0x04, 0x05),
	), TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 5.0}}}},
	{"object typed sealed and dynamic", cat(
		raw(0x0a, 0x1b, 0x07), []byte("Foo"),
		raw(0x03), []byte("x"),
		raw(0x04, 0x05),
		raw(0x03), []byte("y"), raw(0x02),
		raw(0x01),
	), TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 5.0}, {Key: "y", Value: false}}}},
	{"object sealed member with empty name", raw(0x0a, 0x13, 0x01, 0x01, 0x04, 0x01), Object{{Key: "", Value: 1.0}}},
	{"traits and object references", cat(
		raw(0x09, 0x07, 0x01),                                                         // object 0
		raw(0x0a, 0x13, 0x07), []byte("Foo"), raw(0x03), []byte("x"), raw(0x04, 0x01), // object 1, traits 0
		raw(0x0a, 0x01, 0x04, 0x02), // object 2 with traits 0
		raw(0x0a, 0x02),             // object 1 again
	), StrictArray{
		TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 1.0}}},
		TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 2.0}}},
		TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 1.0}}},
	}},
	{"class and member names by reference", cat(
		raw(0x09, 0x05, 0x01),
		raw(0x0a, 0x13, 0x07), []byte("Foo"), raw(0x03), []byte("x"), raw(0x04, 0x01),
		raw(0x0a, 0x1b, 0x00, 0x02, 0x04, 0x02, 0x01), // class "Foo" and member "x" as string references
	), StrictArray{
		TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 1.0}}},
		TypedObject{ClassName: "Foo", Object: Object{{Key: "x", Value: 2.0}}},
	}},
}

// errorCase is an input that must fail with an error wrapping want.
type errorCase struct {
	name  string
	input []byte
	want  error
}

var amf0Errors = []errorCase{
	{"empty", nil, ErrShort},
	{"number cut", raw(0x00, 0x3f), ErrShort},
	{"unknown marker", raw(0x12), ErrUnknownMarker},
	{"unknown marker 0xff", raw(0xff), ErrUnknownMarker},
	{"object end outside an object", raw(0x09), ErrUnknownMarker},
	{"movieclip", raw(0x04), ErrUnsupportedType},
	{"unsupported", raw(0x0d), ErrUnsupportedType},
	{"recordset", raw(0x0e), ErrUnsupportedType},
	{"string longer than the data", cat(raw(0x02, 0xff, 0xff), []byte("a")), ErrTooLarge},
	{"long string longer than the data", raw(0x0c, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"XML longer than the data", raw(0x0f, 0x00, 0x00, 0x10, 0x00), ErrTooLarge},
	{"key longer than the data", raw(0x03, 0xff, 0xff, 0x00), ErrTooLarge},
	{"class name longer than the data", raw(0x10, 0xff, 0xff, 0x00), ErrTooLarge},
	{"strict array count beyond the data", raw(0x0a, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"strict array count beyond the limit", cat(raw(0x0a, 0x00, 0x00, 0x10, 0x01), bytes.Repeat(raw(0x05), MaxProperties+1)), ErrTooLarge},
	{"reference out of range", raw(0x07, 0x00, 0x00), ErrBadReference},
	{"reference to itself", cat(raw(0x03, 0x00, 0x01), []byte("a"), raw(0x07, 0x00, 0x00)), ErrBadReference},
	{"reference ahead", cat(raw(0x0a, 0x00, 0x00, 0x00, 0x02, 0x07, 0x00, 0x01, 0x03, 0x00, 0x00, 0x09)), ErrBadReference},
	{"switch to AMF3 vector", raw(0x11, 0x0d, 0x01, 0x00), ErrUnsupportedType},
	{"too deep", cat(bytes.Repeat(raw(0x0a, 0x00, 0x00, 0x00, 0x01), MaxDepth+1), raw(0x05)), ErrTooDeep},
	{"too deep through AMF3", cat(bytes.Repeat(raw(0x0a, 0x00, 0x00, 0x00, 0x01), MaxDepth), raw(0x11, 0x09, 0x01, 0x01)), ErrTooDeep},
	{"too many object members", cat(raw(0x03), bytes.Repeat(cat(raw(0x00, 0x01), []byte("k"), raw(0x05)), MaxProperties+1), raw(0x00, 0x00, 0x09)), ErrTooLarge},
	{"too many ECMA array members", cat(raw(0x08, 0x00, 0x00, 0x00, 0x01), bytes.Repeat(cat(raw(0x00, 0x01), []byte("k"), raw(0x05)), MaxProperties+1), raw(0x00, 0x00, 0x09)), ErrTooLarge},
	{"reference doubling", amf0ReferenceDoubling(), ErrTooLarge},
}

var amf3Errors = []errorCase{
	{"empty", nil, ErrShort},
	{"integer cut", raw(0x04, 0x80), ErrShort},
	{"unknown marker", raw(0x12), ErrUnknownMarker},
	{"vector int", raw(0x0d, 0x01, 0x00), ErrUnsupportedType},
	{"vector uint", raw(0x0e, 0x01, 0x00), ErrUnsupportedType},
	{"vector double", raw(0x0f, 0x01, 0x00), ErrUnsupportedType},
	{"vector object", raw(0x10, 0x01, 0x00, 0x01), ErrUnsupportedType},
	{"dictionary", raw(0x11, 0x01, 0x00), ErrUnsupportedType},
	{"externalizable object", cat(raw(0x0a, 0x07, 0x07), []byte("Foo")), ErrUnsupportedType},
	{"string reference out of range", raw(0x06, 0x00), ErrBadReference},
	{"object reference out of range", raw(0x0a, 0x00), ErrBadReference},
	{"traits reference out of range", raw(0x0a, 0x01), ErrBadReference},
	{"object containing itself", cat(raw(0x0a, 0x0b, 0x01, 0x09), []byte("self"), raw(0x0a, 0x00, 0x01)), ErrBadReference},
	{"array containing itself", raw(0x09, 0x03, 0x01, 0x09, 0x00), ErrBadReference},
	{"string longer than the data", raw(0x06, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"XML longer than the data", raw(0x0b, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"byte array longer than the data", raw(0x0c, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"array count beyond the data", raw(0x09, 0xff, 0xff, 0xff, 0xff), ErrTooLarge},
	{"array count beyond the limit", cat(raw(0x09, 0xc0, 0x03, 0x01), bytes.Repeat(raw(0x01), MaxProperties+1)), ErrTooLarge},
	{"sealed members beyond the data", raw(0x0a, 0xff, 0xff, 0xff, 0xf3), ErrTooLarge},
	{"dynamic members beyond the limit", cat(raw(0x0a, 0x0b, 0x01), bytes.Repeat(cat(raw(0x03), []byte("k"), raw(0x01)), MaxProperties+1), raw(0x01)), ErrTooLarge},
	{"named and dense beyond the limit", cat(raw(0x09, 0xc0, 0x01), raw(0x03), []byte("k"), raw(0x01, 0x01), bytes.Repeat(raw(0x01), MaxProperties)), ErrTooLarge},
	{"too deep", cat(bytes.Repeat(raw(0x09, 0x03, 0x01), MaxDepth+1), raw(0x01)), ErrTooDeep},
	{"too deep through a reference", amf3DeepReference(), ErrTooDeep},
	{"string reference repetition", amf3StringRepetition(), ErrTooLarge},
	{"reference doubling", amf3ReferenceDoubling(), ErrTooLarge},
}

// amf0ReferenceDoubling builds a strict array whose element k holds two
// references to element k-1: a few hundred bytes that would expand to
// billions of values.
func amf0ReferenceDoubling() []byte {
	const levels = 30
	out := raw(0x0a, 0x00, 0x00, 0x00, levels+1) // reference 0
	out = append(out, 0x02, 0x00, 0x10)          // element 0: a 16-byte string
	out = append(out, "0123456789abcdef"...)
	out = append(out, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x05) // element 1, reference 1: [null]
	for k := 2; k <= levels; k++ {
		// element k, reference k: [ref k-1, ref k-1]
		out = append(out, 0x0a, 0x00, 0x00, 0x00, 0x02, 0x07, 0x00, byte(k-1), 0x07, 0x00, byte(k-1))
	}
	return out
}

// amf3ReferenceDoubling is amf0ReferenceDoubling in AMF3.
func amf3ReferenceDoubling() []byte {
	const levels = 30
	out := raw(0x09, (levels+1)<<1|1, 0x01)         // object 0
	out = append(out, 0x09, 0x03, 0x01, 0x06, 0x21) // element 0, object 1: [16-byte string]
	out = append(out, "0123456789abcdef"...)
	for k := 1; k <= levels; k++ {
		// element k, object k+1: [ref object k, ref object k]
		out = append(out, 0x09, 0x05, 0x01, 0x09, byte(k<<1), 0x09, byte(k<<1))
	}
	return out
}

// amf3StringRepetition builds a dense array of one 1000-byte string and
// 2000 references to it.
func amf3StringRepetition() []byte {
	out := appendU29(raw(0x09), 2001<<1|1)
	out = append(out, 0x01, 0x06)
	out = appendU29(out, 1000<<1|1)
	out = append(out, bytes.Repeat([]byte("s"), 1000)...)
	return append(out, bytes.Repeat(raw(0x06, 0x00), 2000)...)
}

// amf3DeepReference builds an array nested MaxDepth-1 levels deep followed
// by an array holding a reference to it, which would make MaxDepth+1 levels.
func amf3DeepReference() []byte {
	out := raw(0x09, 0x05, 0x01)                                          // depth 1, object 0
	out = append(out, bytes.Repeat(raw(0x09, 0x03, 0x01), MaxDepth-1)...) // objects 1..31, depth 2..32
	out = append(out, 0x01)
	return append(out, 0x09, 0x03, 0x01, 0x09, 0x02) // depth 2: [ref object 1, height 31]
}
