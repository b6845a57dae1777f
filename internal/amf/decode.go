package amf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AMF0 type markers.
const (
	marker0Number      = 0x00
	marker0Boolean     = 0x01
	marker0String      = 0x02
	marker0Object      = 0x03
	marker0MovieClip   = 0x04
	marker0Null        = 0x05
	marker0Undefined   = 0x06
	marker0Reference   = 0x07
	marker0ECMAArray   = 0x08
	marker0ObjectEnd   = 0x09
	marker0StrictArray = 0x0A
	marker0Date        = 0x0B
	marker0LongString  = 0x0C
	marker0Unsupported = 0x0D
	marker0RecordSet   = 0x0E
	marker0XMLDocument = 0x0F
	marker0TypedObject = 0x10
	marker0AVMPlus     = 0x11
)

// minProperty0Size is the fewest bytes an AMF0 object member can take: an
// empty key (two length bytes) and a one-byte value.
const minProperty0Size = 3

// DecodeAMF0 decodes one AMF0 value from the start of b and returns it with
// the number of bytes it took. Bytes after the value are ignored. AMF0
// references (0x07) resolve only against complex values earlier in the same
// value; a reference to a value that is still being decoded, which is how
// AMF0 expresses a cycle, fails with ErrBadReference, so decoded values never
// contain cycles. AMF3 values behind the avmplus-object marker (0x11) decode
// as DecodeAMF3 describes. On error v is nil and n is 0.
func DecodeAMF0(b []byte) (v any, n int, err error) {
	d := decoder{b: b}
	v, err = d.value0()
	if err != nil {
		return nil, 0, err
	}
	return v, d.off, nil
}

// DecodeAMF0All decodes AMF0 values one after another until b is exhausted,
// as in the body of a command or data message. AMF0 references resolve
// against complex values decoded earlier in the same call, cycles failing as
// for DecodeAMF0; each switch to AMF3 (0x11) starts with empty AMF3
// reference tables. The limits on references apply to the call as a whole.
// An empty b yields no values and no error. On error no values are returned.
func DecodeAMF0All(b []byte) ([]any, error) {
	d := decoder{b: b}
	var values []any
	for d.off < len(d.b) {
		v, err := d.value0()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
	}
	return values, nil
}

// refEntry is one entry of a reference table.
type refEntry struct {
	value  any
	cost   int  // size of value, as charged against MaxReferenceExpansion
	height int  // containers nested in value, itself included
	done   bool // false while value is still being decoded
}

// decoder holds the state of one decode call. It is used by one goroutine.
type decoder struct {
	b   []byte
	off int // next byte to read

	depth   int // containers open around the current position
	deepest int // deepest container level reached inside the innermost open container

	cost     int // size of everything decoded so far, references included
	expanded int // share of cost that came through references

	refs0 refTable   // AMF0 complex values in order of appearance
	amf3  amf3Tables // reset at each switch to AMF3
}

// container records the decoder's state when a container was opened.
type container struct {
	startCost   int
	prevDeepest int
}

// open enters a container whose marker was read at offset at.
func (d *decoder) open(at int) (container, error) {
	if d.depth >= MaxDepth {
		return container{}, fmt.Errorf("%w: more than %d levels at offset %d", ErrTooDeep, MaxDepth, at)
	}
	d.depth++
	c := container{startCost: d.cost, prevDeepest: d.deepest}
	d.deepest = d.depth
	d.cost++
	return c, nil
}

// close leaves the container entered by open and returns its cost and height.
func (d *decoder) close(c container) (cost, height int) {
	cost = d.cost - c.startCost
	height = d.deepest - d.depth + 1
	d.depth--
	d.deepest = max(d.deepest, c.prevDeepest)
	return cost, height
}

// resolve returns the value of entry idx of t, for a reference read at
// offset at, and charges for its reuse.
func (d *decoder) resolve(t refTable, idx uint32, at int) (any, error) {
	if int64(idx) >= int64(len(t)) {
		return nil, fmt.Errorf("%w: reference %d at offset %d, table holds %d", ErrBadReference, idx, at, len(t))
	}
	e := t[idx]
	if !e.done {
		return nil, fmt.Errorf("%w: reference at offset %d to an object still being decoded (cycle)", ErrBadReference, at)
	}
	if d.depth+e.height > MaxDepth {
		return nil, fmt.Errorf("%w: reference at offset %d nests more than %d levels", ErrTooDeep, at, MaxDepth)
	}
	if err := d.charge(e.cost, at); err != nil {
		return nil, err
	}
	d.deepest = max(d.deepest, d.depth+e.height)
	return e.value, nil
}

// charge accounts for n units repeated through a reference.
func (d *decoder) charge(n, at int) error {
	d.expanded += n
	if d.expanded > MaxReferenceExpansion {
		return fmt.Errorf("%w: references at offset %d repeat more than %d units", ErrTooLarge, at, MaxReferenceExpansion)
	}
	d.cost += n
	return nil
}

// refTable is a reference table of complex values. It keeps at most
// MaxReferences entries.
type refTable []refEntry

// add appends e and returns its index, or -1 when the table is full.
func (t *refTable) add(e refEntry) int {
	if len(*t) >= MaxReferences {
		return -1
	}
	*t = append(*t, e)
	return len(*t) - 1
}

// set completes the entry at idx, an index returned by add.
func (t refTable) set(idx int, e refEntry) {
	if idx >= 0 {
		t[idx] = e
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) errShort(what string) error {
	return fmt.Errorf("%w: reading %s at offset %d", ErrShort, what, d.off)
}

// fixed returns the next n bytes of a fixed-size field.
func (d *decoder) fixed(n int, what string) ([]byte, error) {
	if d.remaining() < n {
		return nil, d.errShort(what)
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

// claimed returns the next n bytes, n being a length read from the input.
func (d *decoder) claimed(n uint64, what string) ([]byte, error) {
	if n > uint64(d.remaining()) {
		return nil, fmt.Errorf("%w: %s of %d bytes at offset %d, %d left", ErrTooLarge, what, n, d.off, d.remaining())
	}
	p := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

func (d *decoder) readByte(what string) (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.errShort(what)
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *decoder) readUint16(what string) (uint16, error) {
	p, err := d.fixed(2, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(p), nil
}

func (d *decoder) readUint32(what string) (uint32, error) {
	p, err := d.fixed(4, what)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

func (d *decoder) readFloat64(what string) (float64, error) {
	p, err := d.fixed(8, what)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
}

// string16 reads an AMF0 UTF-8 string with a 16-bit length.
func (d *decoder) string16(what string) (string, error) {
	n, err := d.readUint16(what + " length")
	if err != nil {
		return "", err
	}
	p, err := d.claimed(uint64(n), what)
	if err != nil {
		return "", err
	}
	d.cost += len(p)
	return string(p), nil
}

// string32 reads an AMF0 UTF-8 string with a 32-bit length.
func (d *decoder) string32(what string) (string, error) {
	n, err := d.readUint32(what + " length")
	if err != nil {
		return "", err
	}
	p, err := d.claimed(uint64(n), what)
	if err != nil {
		return "", err
	}
	d.cost += len(p)
	return string(p), nil
}

// value0 decodes one AMF0 value.
func (d *decoder) value0() (any, error) {
	at := d.off
	m, err := d.readByte("type marker")
	if err != nil {
		return nil, err
	}
	d.cost++
	switch m {
	case marker0Number:
		return d.readFloat64("number")
	case marker0Boolean:
		c, err := d.readByte("boolean")
		return c != 0, err
	case marker0String:
		return d.string16("string")
	case marker0LongString:
		return d.string32("long string")
	case marker0XMLDocument:
		s, err := d.string32("XML document")
		return XMLDocument(s), err
	case marker0Null:
		return nil, nil
	case marker0Undefined:
		return Undefined{}, nil
	case marker0Date:
		ms, err := d.readFloat64("date")
		if err != nil {
			return nil, err
		}
		tz, err := d.readUint16("date time zone")
		return Date{Millis: ms, TimeZone: int16(tz)}, err
	case marker0Object, marker0TypedObject, marker0ECMAArray, marker0StrictArray:
		return d.complex0(m, at)
	case marker0Reference:
		idx, err := d.readUint16("reference")
		if err != nil {
			return nil, err
		}
		return d.resolve(d.refs0, uint32(idx), at)
	case marker0AVMPlus:
		d.amf3 = amf3Tables{}
		return d.value3()
	case marker0MovieClip, marker0Unsupported, marker0RecordSet:
		return nil, fmt.Errorf("%w: AMF0 marker 0x%02x at offset %d", ErrUnsupportedType, m, at)
	case marker0ObjectEnd:
		return nil, fmt.Errorf("%w: object-end marker outside an object at offset %d", ErrUnknownMarker, at)
	default:
		return nil, fmt.Errorf("%w: AMF0 marker 0x%02x at offset %d", ErrUnknownMarker, m, at)
	}
}

// complex0 decodes an AMF0 object, typed object, ECMA array or strict array
// whose marker m has been read at offset at, and records it in the reference
// table.
func (d *decoder) complex0(m byte, at int) (any, error) {
	idx := d.refs0.add(refEntry{})
	c, err := d.open(at)
	if err != nil {
		return nil, err
	}
	var v any
	switch m {
	case marker0Object:
		var props []Property
		props, err = d.properties0(0)
		v = Object(props)
	case marker0TypedObject:
		var class string
		class, err = d.string16("class name")
		if err != nil {
			return nil, err
		}
		var props []Property
		props, err = d.properties0(0)
		v = TypedObject{ClassName: class, Object: props}
	case marker0ECMAArray:
		// The count is advisory: encoders write wrong ones, so members are
		// read up to the end marker and the count only sizes the slice.
		var count uint32
		count, err = d.readUint32("ECMA array count")
		if err != nil {
			return nil, err
		}
		var props []Property
		props, err = d.properties0(count)
		v = ECMAArray(props)
	case marker0StrictArray:
		v, err = d.strictArray0()
	}
	if err != nil {
		return nil, err
	}
	cost, height := d.close(c)
	d.refs0.set(idx, refEntry{value: v, cost: cost, height: height, done: true})
	return v, nil
}

// properties0 reads AMF0 object members up to and including the end marker.
// hint is a member count claimed by the input.
func (d *decoder) properties0(hint uint32) ([]Property, error) {
	n := min(int64(hint), int64(d.remaining()/minProperty0Size), MaxProperties)
	props := make([]Property, 0, n)
	for {
		at := d.off
		key, err := d.string16("property key")
		if err != nil {
			return nil, err
		}
		if key == "" {
			if d.off >= len(d.b) {
				return nil, d.errShort("property value")
			}
			if d.b[d.off] == marker0ObjectEnd {
				d.off++
				return props, nil
			}
		}
		if len(props) >= MaxProperties {
			return nil, fmt.Errorf("%w: more than %d members at offset %d", ErrTooLarge, MaxProperties, at)
		}
		v, err := d.value0()
		if err != nil {
			return nil, err
		}
		props = append(props, Property{Key: key, Value: v})
	}
}

// strictArray0 reads the count and elements of an AMF0 strict array.
func (d *decoder) strictArray0() (StrictArray, error) {
	at := d.off
	count, err := d.readUint32("strict array count")
	if err != nil {
		return nil, err
	}
	if count > MaxProperties || int64(count) > int64(d.remaining()) {
		return nil, fmt.Errorf("%w: strict array of %d elements at offset %d, %d bytes left", ErrTooLarge, count, at, d.remaining())
	}
	arr := make(StrictArray, 0, count)
	for range count {
		v, err := d.value0()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	return arr, nil
}
