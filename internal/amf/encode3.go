package amf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// maxString3 is the longest string, XML text or byte array AMF3 can carry:
// its length shares a U29 with a flag bit.
const maxString3 = maxU29 >> 1

// U29 object headers written by AppendAMF3: an inline object with inline
// traits that are dynamic with no sealed members, or not dynamic with the
// sealed member count shifted left by objectSealedShift+1.
const (
	objectHeaderDynamic = 0x0B
	objectHeaderSealed  = 0x03
)

// AppendAMF3 appends the AMF3 encoding of v to dst and returns the extended
// slice. It accepts the types of the package's value model and the Go integer
// types and float32 as numbers.
//
// Numbers that are whole and fit 29 bits signed (negative zero excepted) are
// written as AMF3 integers, others as doubles. Object is written as an
// anonymous dynamic object and TypedObject as a dynamic object of its class;
// when a key is empty, which dynamic members cannot express, all members are
// written as sealed members instead. ECMAArray is written with named members
// only, so an empty one decodes as an empty StrictArray, and it fails with
// ErrUnsupportedType if a key is empty. StrictArray is written as a dense
// array. A Date's TimeZone is not written. No references are written.
//
// Errors and the returned slice on error are as for AppendAMF0, except that
// the length limit for strings, XML and byte arrays is 2^28-1 bytes.
func AppendAMF3(dst []byte, v any) ([]byte, error) {
	var e encoder
	out, err := e.value3(dst, v)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func (e *encoder) value3(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, marker3Null), nil
	case Undefined:
		return append(dst, marker3Undefined), nil
	case bool:
		if x {
			return append(dst, marker3True), nil
		}
		return append(dst, marker3False), nil
	case string:
		return appendString3(append(dst, marker3String), x)
	case XMLDocument:
		return appendString3(append(dst, marker3XMLDocument), string(x))
	case Date:
		dst = append(dst, marker3Date, 0x01)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(x.Millis)), nil
	case []byte:
		return appendByteArray3(dst, x)
	case Object, TypedObject, ECMAArray, StrictArray:
		if err := e.enter(); err != nil {
			return nil, err
		}
		dst, err := e.container3(dst, x)
		e.leave()
		return dst, err
	}
	if i, ok := int29Of(v); ok {
		return appendU29(append(dst, marker3Integer), uint32(i)&maxU29), nil
	}
	if f, ok := number(v); ok {
		dst = append(dst, marker3Double)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// container3 writes an Object, TypedObject, ECMAArray or StrictArray.
func (e *encoder) container3(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case Object:
		return e.object3(dst, "", x)
	case TypedObject:
		return e.object3(dst, x.ClassName, x.Object)
	case ECMAArray:
		if len(x) > MaxProperties {
			return nil, fmt.Errorf("%w: %d members", ErrTooLarge, len(x))
		}
		dst = append(dst, marker3Array, 0x01) // no dense part
		var err error
		for _, p := range x {
			if p.Key == "" {
				return nil, fmt.Errorf("%w: AMF3 array member with an empty name", ErrUnsupportedType)
			}
			if dst, err = appendString3(dst, p.Key); err != nil {
				return nil, err
			}
			if dst, err = e.value3(dst, p.Value); err != nil {
				return nil, err
			}
		}
		return append(dst, 0x01), nil // empty name ends the named part
	case StrictArray:
		if len(x) > MaxProperties {
			return nil, fmt.Errorf("%w: strict array of %d elements", ErrTooLarge, len(x))
		}
		dst = appendU29(append(dst, marker3Array), uint32(len(x))<<1|1)
		dst = append(dst, 0x01) // no named part
		var err error
		for _, elem := range x {
			if dst, err = e.value3(dst, elem); err != nil {
				return nil, err
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// object3 writes an object with inline traits.
func (e *encoder) object3(dst []byte, className string, props Object) ([]byte, error) {
	if len(props) > MaxProperties {
		return nil, fmt.Errorf("%w: %d members", ErrTooLarge, len(props))
	}
	sealed := false
	for _, p := range props {
		if p.Key == "" {
			sealed = true
			break
		}
	}
	dst = append(dst, marker3Object)
	if sealed {
		dst = appendU29(dst, uint32(len(props))<<(objectSealedShift+1)|objectHeaderSealed)
	} else {
		dst = append(dst, objectHeaderDynamic)
	}
	dst, err := appendString3(dst, className)
	if err != nil {
		return nil, err
	}
	if sealed {
		for _, p := range props {
			if dst, err = appendString3(dst, p.Key); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range props {
		if !sealed {
			if dst, err = appendString3(dst, p.Key); err != nil {
				return nil, err
			}
		}
		if dst, err = e.value3(dst, p.Value); err != nil {
			return nil, err
		}
	}
	if !sealed {
		dst = append(dst, 0x01) // empty name ends the dynamic members
	}
	return dst, nil
}

// appendString3 writes an inline AMF3 string without its marker.
func appendString3(dst []byte, s string) ([]byte, error) {
	if len(s) > maxString3 {
		return nil, fmt.Errorf("%w: AMF3 string of %d bytes", ErrTooLarge, len(s))
	}
	dst = appendU29(dst, uint32(len(s))<<1|1)
	return append(dst, s...), nil
}

// appendByteArray3 writes an AMF3 ByteArray with its marker.
func appendByteArray3(dst []byte, b []byte) ([]byte, error) {
	if len(b) > maxString3 {
		return nil, fmt.Errorf("%w: AMF3 byte array of %d bytes", ErrTooLarge, len(b))
	}
	dst = appendU29(append(dst, marker3ByteArray), uint32(len(b))<<1|1)
	return append(dst, b...), nil
}

// appendU29 writes v, at most maxU29, as a variable-length U29.
func appendU29(dst []byte, v uint32) []byte {
	switch {
	case v < 1<<7:
		return append(dst, byte(v))
	case v < 1<<14:
		return append(dst, byte(v>>7)|0x80, byte(v)&0x7f)
	case v < 1<<21:
		return append(dst, byte(v>>14)|0x80, byte(v>>7)|0x80, byte(v)&0x7f)
	default:
		return append(dst, byte(v>>22)|0x80, byte(v>>15)|0x80, byte(v>>8)|0x80, byte(v))
	}
}

// int29Of returns v as an AMF3 integer if it is a whole number in range that
// the integer type can carry without loss (negative zero cannot).
func int29Of(v any) (int32, bool) {
	if i, ok := integer(v); ok {
		return int32(i), i >= minInt29 && i <= maxInt29
	}
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || f < minInt29 || f > maxInt29 || (f == 0 && math.Signbit(f)) {
		return 0, false
	}
	return int32(f), true
}
