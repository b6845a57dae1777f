package server

// Values the server announces on connect.
const (
	windowAckSize     = 5_000_000
	peerBandwidth     = 5_000_000
	serverFMSVersion  = "FMS/3,0,1,123"
	serverCapabilites = 31
)
