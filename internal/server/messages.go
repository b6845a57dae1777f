package server

// What the server says it is in its connect result.
const (
	serverFMSVersion  = "FMS/3,0,1,123"
	serverCapabilites = 31
)
