package callback

// ForwardURLHeader is the response header, which may be repeated, by which
// the answer to a start event names targets to forward that publish to:
// full rtmp:// or rtmps:// URLs, used in addition to FORWARD_URLS. An
// invalid one is logged and skipped by the forwarder, never fatal to the
// publish.
const ForwardURLHeader = "forward-url"
