package chunk

// Message types the tests use, by their numbers in the specification
// (package message, which names them, is a layer above this one).
const (
	TypeUserControl uint8 = 4
	TypeAudio       uint8 = 8
	TypeVideo       uint8 = 9
	TypeDataAMF0    uint8 = 18
	TypeCommandAMF0 uint8 = 20
)
