// Package amf decodes and encodes Action Message Format values as carried in
// RTMP messages: AMF0 in command (type 20) and data (type 18) messages, and
// AMF3, reached from AMF0 through the avmplus-object marker (0x11), in the
// AMF3 command (type 17) and data (type 15) messages. The body of a type 17
// or type 15 message starts with one format byte (0x00); the caller strips it
// and passes the rest to DecodeAMF0All.
//
// Decoding reads untrusted peer bytes. It never panics, never allocates more
// than the input can justify (every length or count is checked against the
// named limits and against the bytes left before anything is allocated), and
// bounds nesting depth, property counts, reference tables and the amount of
// data that references may repeat.
//
// Decoded values share no memory with the input slice, which the caller may
// reuse once a decode function has returned. A value reached through a
// reference is the same Go value as the one it refers to (slices share their
// backing arrays); callers must treat decoded values as read-only.
//
// Value model, decoded and encoded:
//
//	nil          AMF0 null (0x05), AMF3 null (0x01)
//	Undefined    AMF0 undefined (0x06), AMF3 undefined (0x00)
//	float64      AMF0 number (0x00), AMF3 integer (0x04) and double (0x05)
//	bool         AMF0 boolean (0x01), AMF3 false/true (0x02, 0x03)
//	string       AMF0 string (0x02) and long string (0x0C), AMF3 string (0x06)
//	Object       AMF0 object (0x03), AMF3 object (0x0A) with no class name
//	TypedObject  AMF0 typed object (0x10), AMF3 object (0x0A) with a class name
//	ECMAArray    AMF0 ECMA array (0x08), AMF3 array (0x09) with named members
//	StrictArray  AMF0 strict array (0x0A), AMF3 array (0x09) with only a dense part
//	Date         AMF0 date (0x0B), AMF3 date (0x08)
//	XMLDocument  AMF0 XML document (0x0F), AMF3 XMLDocument (0x07) and XML (0x0B)
//	[]byte       AMF3 ByteArray (0x0C)
//
// The encoders also accept the Go integer types and float32 as numbers.
package amf

import "errors"

// Limits on what a decoded message may claim. A claim beyond a limit fails
// with ErrTooDeep or ErrTooLarge before anything is allocated for it. The
// encoders apply MaxDepth and MaxProperties too, so whatever they produce
// decodes again.
const (
	// MaxDepth is the deepest nesting of objects and arrays accepted: a
	// container inside MaxDepth others fails with ErrTooDeep.
	MaxDepth = 32

	// MaxProperties is the most members one object or array may hold.
	MaxProperties = 4096

	// MaxReferences is the most entries kept in one reference table: the
	// AMF0 table of complex values (whose 16-bit indexes reach no further),
	// and each of the AMF3 string, object and traits tables. Values past it
	// still decode but are not kept, and a reference to one fails with
	// ErrBadReference.
	MaxReferences = 1 << 16

	// MaxReferenceExpansion bounds the data that references may repeat in
	// one decode call. Every time a reference is resolved, the size of what
	// it refers to (one unit per value, plus the bytes of its strings and
	// keys, references within counted again) is charged; a call whose
	// charges exceed this fails with ErrTooLarge. Without it a few hundred
	// bytes of nested references would decode into a tree that takes hours
	// to walk or re-encode. With it, references add at most a few megabytes
	// (no value encodes to more than 11 bytes per unit) to what a decoded
	// value re-encodes to.
	MaxReferenceExpansion = 1 << 18
)

// Errors returned by the decoders and encoders, wrapped with detail such as
// the offending marker and its offset; test for them with errors.Is.
var (
	// ErrShort reports input that ends inside a fixed-size field.
	ErrShort = errors.New("amf: unexpected end of data")
	// ErrUnknownMarker reports a type marker that the format does not define,
	// or the object-end marker where a value was expected.
	ErrUnknownMarker = errors.New("amf: unknown type marker")
	// ErrTooDeep reports nesting beyond MaxDepth.
	ErrTooDeep = errors.New("amf: nesting too deep")
	// ErrTooLarge reports a length or count beyond a limit or beyond the
	// bytes left in the input, or references that repeat more than
	// MaxReferenceExpansion.
	ErrTooLarge = errors.New("amf: length or count too large")
	// ErrUnsupportedType reports a defined type this package does not handle
	// (AMF0 movieclip, recordset and unsupported markers; AMF3 vectors,
	// dictionaries and externalizable objects) or a Go value it cannot encode.
	ErrUnsupportedType = errors.New("amf: unsupported type")
	// ErrBadReference reports a reference to an entry that does not exist,
	// or to an object that is still being decoded (a cycle).
	ErrBadReference = errors.New("amf: bad reference")
)

// Undefined is the AMF undefined value.
type Undefined struct{}

// Property is one named member of an Object or ECMAArray.
type Property struct {
	Key   string
	Value any
}

// Object is an anonymous object: its members in wire order. Keys may be
// empty and may repeat; the accessors return the first match.
type Object []Property

// ECMAArray is an associative array: its members in wire order.
type ECMAArray []Property

// StrictArray is a dense array.
type StrictArray []any

// TypedObject is an object sent with a class name.
type TypedObject struct {
	ClassName string
	Object    Object
}

// Date is a point in time as milliseconds since the Unix epoch, UTC.
// TimeZone is the AMF0 field that the specification reserves and says to
// write as zero; it is kept as read. AMF3 has no such field: it decodes as
// zero and is not written.
type Date struct {
	Millis   float64
	TimeZone int16
}

// XMLDocument is XML text.
type XMLDocument string

// Get returns the value of the first member named key.
func (o Object) Get(key string) (any, bool) { return lookup(o, key) }

// String returns the first member named key if it is a string, else "".
func (o Object) String(key string) string { return lookupString(o, key) }

// Number returns the first member named key if it is a number.
func (o Object) Number(key string) (float64, bool) { return lookupNumber(o, key) }

// Get returns the value of the first member named key.
func (a ECMAArray) Get(key string) (any, bool) { return lookup(a, key) }

// String returns the first member named key if it is a string, else "".
func (a ECMAArray) String(key string) string { return lookupString(a, key) }

// Number returns the first member named key if it is a number.
func (a ECMAArray) Number(key string) (float64, bool) { return lookupNumber(a, key) }

func lookup(props []Property, key string) (any, bool) {
	for _, p := range props {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

func lookupString(props []Property, key string) string {
	v, _ := lookup(props, key)
	s, _ := v.(string)
	return s
}

func lookupNumber(props []Property, key string) (float64, bool) {
	v, _ := lookup(props, key)
	f, ok := v.(float64)
	return f, ok
}
