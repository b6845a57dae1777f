package message

// Command names of the RTMP specification and the conventions peers follow
// (FMS, ffmpeg, librtmp, OBS).
const (
	CommandConnect       = "connect"
	CommandCreateStream  = "createStream"
	CommandDeleteStream  = "deleteStream"
	CommandReleaseStream = "releaseStream"
	CommandFCPublish     = "FCPublish"
	CommandFCUnpublish   = "FCUnpublish"
	CommandPublish       = "publish"
	CommandPlay          = "play"
	CommandResult        = "_result"
	CommandError         = "_error"
	CommandOnStatus      = "onStatus"
	// CommandSetDataFrame is the name a publisher puts before onMetaData
	// in a data message, for the server to keep.
	CommandSetDataFrame = "@setDataFrame"
)

// PublishLive is the publish type of a live stream (the others, "record"
// and "append", ask the server to record).
const PublishLive = "live"

// Status levels and the codes of onStatus a client acts on.
const (
	LevelStatus = "status"
	LevelError  = "error"

	CodeConnectSuccess    = "NetConnection.Connect.Success"
	CodePublishStart      = "NetStream.Publish.Start"
	CodeUnpublishSuccess  = "NetStream.Unpublish.Success"
	CodePlayStart         = "NetStream.Play.Start"
	CodePlayReset         = "NetStream.Play.Reset"
	CodePlayUnpublish     = "NetStream.Play.UnpublishNotify"
	CodePlayPublishNotify = "NetStream.Play.PublishNotify"
	CodePublishBadName    = "NetStream.Publish.BadName"
	CodePublishBadConn    = "NetStream.Publish.BadConnection"
	CodeConnectClosed     = "NetConnection.Connect.Closed"
	CodeConnectRejected   = "NetConnection.Connect.Rejected"
)
