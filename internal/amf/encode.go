package amf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AppendAMF0 appends the AMF0 encoding of v to dst and returns the extended
// slice. It accepts the types of the package's value model and the Go integer
// types and float32 as numbers. Strings longer than 65535 bytes are written
// as long strings; a []byte is written as an AMF3 ByteArray behind the
// avmplus-object marker (0x11), AMF0 having no type of its own for it. No
// references are written: a value that appears twice is written twice.
//
// An unsupported Go type fails with an error wrapping ErrUnsupportedType;
// nesting beyond MaxDepth (which includes a value that contains itself) with
// ErrTooDeep; more than MaxProperties members in one container, or a key or
// class name longer than 65535 bytes, with ErrTooLarge. On error dst is
// returned with its original length, though bytes past that length may have
// been overwritten.
func AppendAMF0(dst []byte, v any) ([]byte, error) {
	var e encoder
	out, err := e.value0(dst, v)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendAMF0All appends the AMF0 encodings of values one after another, as in
// a command (name, transaction id, command object, arguments) or a data
// message. Errors are as for AppendAMF0 and name the failing value's index.
func AppendAMF0All(dst []byte, values ...any) ([]byte, error) {
	out := dst
	for i, v := range values {
		var err error
		if out, err = AppendAMF0(out, v); err != nil {
			return dst, fmt.Errorf("%w (value %d)", err, i)
		}
	}
	return out, nil
}

// encoder holds the state of one encode call.
type encoder struct {
	depth int // containers open around the current value
}

func (e *encoder) enter() error {
	if e.depth >= MaxDepth {
		return fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxDepth)
	}
	e.depth++
	return nil
}

func (e *encoder) leave() { e.depth-- }

func (e *encoder) value0(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, marker0Null), nil
	case Undefined:
		return append(dst, marker0Undefined), nil
	case bool:
		if x {
			return append(dst, marker0Boolean, 1), nil
		}
		return append(dst, marker0Boolean, 0), nil
	case string:
		if len(x) <= math.MaxUint16 {
			dst = append(dst, marker0String)
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(x)))
			return append(dst, x...), nil
		}
		return appendString32(dst, marker0LongString, x, "long string")
	case XMLDocument:
		return appendString32(dst, marker0XMLDocument, string(x), "XML document")
	case Date:
		dst = append(dst, marker0Date)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(x.Millis))
		return binary.BigEndian.AppendUint16(dst, uint16(x.TimeZone)), nil
	case []byte:
		return appendByteArray3(append(dst, marker0AVMPlus), x)
	case Object, TypedObject, ECMAArray, StrictArray:
		if err := e.enter(); err != nil {
			return nil, err
		}
		dst, err := e.container0(dst, x)
		e.leave()
		return dst, err
	}
	if f, ok := number(v); ok {
		dst = append(dst, marker0Number)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// container0 writes an Object, TypedObject, ECMAArray or StrictArray.
func (e *encoder) container0(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case Object:
		return e.properties0(append(dst, marker0Object), x)
	case TypedObject:
		if len(x.ClassName) > math.MaxUint16 {
			return nil, fmt.Errorf("%w: class name of %d bytes", ErrTooLarge, len(x.ClassName))
		}
		dst = append(dst, marker0TypedObject)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(x.ClassName)))
		return e.properties0(append(dst, x.ClassName...), x.Object)
	case ECMAArray:
		dst = append(dst, marker0ECMAArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		return e.properties0(dst, x)
	case StrictArray:
		if len(x) > MaxProperties {
			return nil, fmt.Errorf("%w: strict array of %d elements", ErrTooLarge, len(x))
		}
		dst = append(dst, marker0StrictArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)))
		var err error
		for _, elem := range x {
			if dst, err = e.value0(dst, elem); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// properties0 writes object members and the object-end marker.
func (e *encoder) properties0(dst []byte, props []Property) ([]byte, error) {
	if len(props) > MaxProperties {
		return nil, fmt.Errorf("%w: %d members", ErrTooLarge, len(props))
	}
	var err error
	for _, p := range props {
		if len(p.Key) > math.MaxUint16 {
			return nil, fmt.Errorf("%w: member name of %d bytes", ErrTooLarge, len(p.Key))
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Key)))
		dst = append(dst, p.Key...)
		if dst, err = e.value0(dst, p.Value); err != nil {
			return nil, err
		}
	}
	return append(dst, 0, 0, marker0ObjectEnd), nil
}

// appendString32 writes marker and s with a 32-bit length.
func appendString32(dst []byte, marker byte, s, what string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, what, len(s))
	}
	dst = append(dst, marker)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...), nil
}

// number returns v as a float64 if it is a Go number type the encoders
// accept.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	i, ok := integer(v)
	return float64(i), ok
}

// integer returns v if it is a Go integer type whose value fits an int64.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		return int64(x), uint64(x) <= math.MaxInt64
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), uint64(x) <= math.MaxInt64
	}
	return 0, false
}
