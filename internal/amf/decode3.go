package amf

import (
	"fmt"
	"strconv"
)

// AMF3 type markers.
const (
	marker3Undefined    = 0x00
	marker3Null         = 0x01
	marker3False        = 0x02
	marker3True         = 0x03
	marker3Integer      = 0x04
	marker3Double       = 0x05
	marker3String       = 0x06
	marker3XMLDocument  = 0x07
	marker3Date         = 0x08
	marker3Array        = 0x09
	marker3Object       = 0x0A
	marker3XML          = 0x0B
	marker3ByteArray    = 0x0C
	marker3VectorInt    = 0x0D
	marker3VectorUint   = 0x0E
	marker3VectorDouble = 0x0F
	marker3VectorObject = 0x10
	marker3Dictionary   = 0x11
)

// Range of the AMF3 integer type (29-bit two's complement) and of the
// variable-length unsigned 29-bit integer (U29) that carries it.
const (
	minInt29 = -1 << 28
	maxInt29 = 1<<28 - 1
	maxU29   = 1<<29 - 1
)

// Bits of an AMF3 object header after its low (inline, not a reference) bit
// has been shifted out.
const (
	objectInlineTraits   = 1 << 0
	objectExternalizable = 1 << 1
	objectDynamic        = 1 << 2
	objectSealedShift    = 3
)

// amf3Tables are the reference tables of one AMF3 context.
type amf3Tables struct {
	strings []string // non-empty strings in order of appearance
	objects refTable // dates, XML, byte arrays, arrays and objects
	traits  []traits
}

// traits describe the layout of AMF3 objects that share a class.
type traits struct {
	className string
	members   []string // sealed member names, in value order
	dynamic   bool
	cost      int // bytes of className and members, charged on each reuse
}

// DecodeAMF3 decodes one AMF3 value from the start of b and returns it with
// the number of bytes it took. Bytes after the value are ignored. References
// resolve only within this value. A reference to an object that is still
// being decoded, which is how AMF3 expresses a cycle, fails with
// ErrBadReference: decoded values never contain cycles. On error v is nil
// and n is 0.
//
// AMF3 integers decode as float64, like every other number. An array with
// only a dense part decodes as StrictArray; one with named members decodes as
// ECMAArray holding the dense elements first, keyed "0", "1", ..., then the
// named members in wire order. An object with a class name decodes as
// TypedObject, without one as Object; sealed and dynamic members are merged
// in wire order. Vectors, dictionaries and externalizable objects fail with
// ErrUnsupportedType.
func DecodeAMF3(b []byte) (v any, n int, err error) {
	d := decoder{b: b}
	v, err = d.value3()
	if err != nil {
		return nil, 0, err
	}
	return v, d.off, nil
}

// u29 reads a variable-length unsigned 29-bit integer.
func (d *decoder) u29(what string) (uint32, error) {
	var v uint32
	for range 3 {
		c, err := d.readByte(what)
		if err != nil {
			return 0, err
		}
		if c&0x80 == 0 {
			return v<<7 | uint32(c), nil
		}
		v = v<<7 | uint32(c&0x7f)
	}
	c, err := d.readByte(what)
	if err != nil {
		return 0, err
	}
	return v<<8 | uint32(c), nil
}

// int29 sign-extends a 29-bit two's complement integer.
func int29(u uint32) int32 { return int32(u<<3) >> 3 }

// value3 decodes one AMF3 value.
func (d *decoder) value3() (any, error) {
	at := d.off
	m, err := d.readByte("AMF3 type marker")
	if err != nil {
		return nil, err
	}
	d.cost++
	switch m {
	case marker3Undefined:
		return Undefined{}, nil
	case marker3Null:
		return nil, nil
	case marker3False:
		return false, nil
	case marker3True:
		return true, nil
	case marker3Integer:
		u, err := d.u29("integer")
		if err != nil {
			return nil, err
		}
		return float64(int29(u)), nil
	case marker3Double:
		return d.readFloat64("double")
	case marker3String:
		return d.string3("string")
	case marker3XMLDocument, marker3XML:
		return d.xml3(at)
	case marker3Date:
		return d.date3(at)
	case marker3ByteArray:
		return d.byteArray3(at)
	case marker3Array:
		return d.array3(at)
	case marker3Object:
		return d.object3(at)
	case marker3VectorInt, marker3VectorUint, marker3VectorDouble, marker3VectorObject, marker3Dictionary:
		return nil, fmt.Errorf("%w: AMF3 marker 0x%02x at offset %d", ErrUnsupportedType, m, at)
	default:
		return nil, fmt.Errorf("%w: AMF3 marker 0x%02x at offset %d", ErrUnknownMarker, m, at)
	}
}

// string3 reads an AMF3 string, inline or by reference.
func (d *decoder) string3(what string) (string, error) {
	at := d.off
	h, err := d.u29(what)
	if err != nil {
		return "", err
	}
	if h&1 == 0 {
		idx := h >> 1
		if int64(idx) >= int64(len(d.amf3.strings)) {
			return "", fmt.Errorf("%w: string reference %d at offset %d, %d strings so far", ErrBadReference, idx, at, len(d.amf3.strings))
		}
		s := d.amf3.strings[idx]
		if err := d.charge(len(s), at); err != nil {
			return "", err
		}
		return s, nil
	}
	p, err := d.claimed(uint64(h>>1), what)
	if err != nil || len(p) == 0 {
		return "", err
	}
	s := string(p)
	d.cost += len(s)
	if len(d.amf3.strings) < MaxReferences {
		d.amf3.strings = append(d.amf3.strings, s)
	}
	return s, nil
}

// header3 reads the U29 header of an AMF3 value that may be sent by
// reference to the object table. For a reference it returns the value
// referred to and isRef; otherwise it returns the header without its
// reference bit.
func (d *decoder) header3(what string, at int) (h uint32, v any, isRef bool, err error) {
	h, err = d.u29(what)
	if err != nil {
		return 0, nil, false, err
	}
	if h&1 == 1 {
		return h >> 1, nil, false, nil
	}
	v, err = d.resolve(d.amf3.objects, h>>1, at)
	return 0, v, true, err
}

func (d *decoder) xml3(at int) (any, error) {
	n, v, isRef, err := d.header3("XML length", at)
	if err != nil || isRef {
		return v, err
	}
	p, err := d.claimed(uint64(n), "XML")
	if err != nil {
		return nil, err
	}
	x := XMLDocument(p)
	d.cost += len(x)
	d.amf3.objects.add(refEntry{value: x, cost: 1 + len(x), done: true})
	return x, nil
}

func (d *decoder) date3(at int) (any, error) {
	_, v, isRef, err := d.header3("date header", at)
	if err != nil || isRef {
		return v, err
	}
	ms, err := d.readFloat64("date")
	if err != nil {
		return nil, err
	}
	date := Date{Millis: ms}
	d.amf3.objects.add(refEntry{value: date, cost: 1, done: true})
	return date, nil
}

func (d *decoder) byteArray3(at int) (any, error) {
	n, v, isRef, err := d.header3("byte array length", at)
	if err != nil || isRef {
		return v, err
	}
	p, err := d.claimed(uint64(n), "byte array")
	if err != nil {
		return nil, err
	}
	data := append([]byte{}, p...)
	d.cost += len(data)
	d.amf3.objects.add(refEntry{value: data, cost: 1 + len(data), done: true})
	return data, nil
}

func (d *decoder) array3(at int) (any, error) {
	denseCount, v, isRef, err := d.header3("array header", at)
	if err != nil || isRef {
		return v, err
	}
	if err := d.checkCount(denseCount, 0, "array", at); err != nil {
		return nil, err
	}
	idx := d.amf3.objects.add(refEntry{})
	c, err := d.open(at)
	if err != nil {
		return nil, err
	}
	var named []Property
	for {
		keyAt := d.off
		key, err := d.string3("array key")
		if err != nil {
			return nil, err
		}
		if key == "" {
			break
		}
		if err := d.checkCount(denseCount, len(named)+1, "array", keyAt); err != nil {
			return nil, err
		}
		v, err := d.value3()
		if err != nil {
			return nil, err
		}
		named = append(named, Property{Key: key, Value: v})
	}
	if err := d.checkCount(denseCount, len(named), "array", at); err != nil {
		return nil, err
	}
	dense := make(StrictArray, 0, denseCount)
	for range denseCount {
		v, err := d.value3()
		if err != nil {
			return nil, err
		}
		dense = append(dense, v)
	}
	if len(named) == 0 {
		v = dense
	} else {
		props := make([]Property, 0, len(dense)+len(named))
		for i, e := range dense {
			key := strconv.Itoa(i)
			d.cost += len(key)
			props = append(props, Property{Key: key, Value: e})
		}
		v = ECMAArray(append(props, named...))
	}
	cost, height := d.close(c)
	d.amf3.objects.set(idx, refEntry{value: v, cost: cost, height: height, done: true})
	return v, nil
}

// checkCount fails unless a container can hold pending values still to be
// read, each at least one byte, plus have members already read.
func (d *decoder) checkCount(pending uint32, have int, what string, at int) error {
	if int64(pending)+int64(have) > MaxProperties || int64(pending) > int64(d.remaining()) {
		return fmt.Errorf("%w: %s of %d members at offset %d, %d bytes left", ErrTooLarge, what, int64(pending)+int64(have), at, d.remaining())
	}
	return nil
}

func (d *decoder) object3(at int) (any, error) {
	h, v, isRef, err := d.header3("object header", at)
	if err != nil || isRef {
		return v, err
	}
	idx := d.amf3.objects.add(refEntry{})
	c, err := d.open(at)
	if err != nil {
		return nil, err
	}
	t, err := d.traits3(h, at)
	if err != nil {
		return nil, err
	}
	if err := d.checkCount(uint32(len(t.members)), 0, "object", at); err != nil {
		return nil, err
	}
	props := make([]Property, 0, len(t.members))
	for _, name := range t.members {
		v, err := d.value3()
		if err != nil {
			return nil, err
		}
		props = append(props, Property{Key: name, Value: v})
	}
	for t.dynamic {
		keyAt := d.off
		key, err := d.string3("member name")
		if err != nil {
			return nil, err
		}
		if key == "" {
			break
		}
		if len(props) >= MaxProperties {
			return nil, fmt.Errorf("%w: more than %d members at offset %d", ErrTooLarge, MaxProperties, keyAt)
		}
		v, err := d.value3()
		if err != nil {
			return nil, err
		}
		props = append(props, Property{Key: key, Value: v})
	}
	v = Object(props)
	if t.className != "" {
		v = TypedObject{ClassName: t.className, Object: props}
	}
	cost, height := d.close(c)
	d.amf3.objects.set(idx, refEntry{value: v, cost: cost, height: height, done: true})
	return v, nil
}

// traits3 returns the traits of an object whose header (without its
// reference bit) is h: inline ones, read and recorded, or earlier ones.
func (d *decoder) traits3(h uint32, at int) (traits, error) {
	if h&objectInlineTraits == 0 {
		idx := h >> 1
		if int64(idx) >= int64(len(d.amf3.traits)) {
			return traits{}, fmt.Errorf("%w: traits reference %d at offset %d, %d traits so far", ErrBadReference, idx, at, len(d.amf3.traits))
		}
		t := d.amf3.traits[idx]
		return t, d.charge(t.cost, at)
	}
	if h&objectExternalizable != 0 {
		return traits{}, fmt.Errorf("%w: externalizable AMF3 object at offset %d", ErrUnsupportedType, at)
	}
	sealed := h >> objectSealedShift
	if err := d.checkCount(sealed, 0, "object traits", at); err != nil {
		return traits{}, err
	}
	className, err := d.string3("class name")
	if err != nil {
		return traits{}, err
	}
	t := traits{
		className: className,
		members:   make([]string, 0, sealed),
		dynamic:   h&objectDynamic != 0,
		cost:      len(className),
	}
	for range sealed {
		name, err := d.string3("sealed member name")
		if err != nil {
			return traits{}, err
		}
		t.members = append(t.members, name)
		t.cost += len(name)
	}
	if len(d.amf3.traits) < MaxReferences {
		d.amf3.traits = append(d.amf3.traits, t)
	}
	return t, nil
}
