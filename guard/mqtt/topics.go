package mqtt

// Topics names the topics of one device; see the package documentation for the layout.
type Topics struct {
	base string // "<prefix>/<device>"
}

// NewTopics returns the topics of device under prefix.
func NewTopics(prefix, device string) Topics { return Topics{base: prefix + "/" + device} }

// Available is "<prefix>/<device>/available": retained "online" or "offline".
func (t Topics) Available() string { return t.base + "/available" }

// Events is "<prefix>/<device>/events": alert events as JSON.
func (t Topics) Events() string { return t.base + "/events" }

// Frame is "<prefix>/<device>/frames/<event-id>": the flagged frame of one event, as JPEG.
func (t Topics) Frame(eventID string) string { return t.base + "/frames/" + eventID }

// Frames is the filter "<prefix>/<device>/frames/+" that matches every frame topic.
func (t Topics) Frames() string { return t.base + "/frames/+" }

// Source is "<prefix>/<device>/source": the frame source's state as JSON (online or offline,
// and why), retained.
func (t Topics) Source() string { return t.base + "/source" }

// Stats is "<prefix>/<device>/stats": periodic stats as JSON.
func (t Topics) Stats() string { return t.base + "/stats" }

// OTAUpdate is "<prefix>/<device>/ota/update": update commands for the device (JSON, see
// guard/daemon), which it subscribes to.
func (t Topics) OTAUpdate() string { return t.base + "/ota/update" }

// OTAState is "<prefix>/<device>/ota/state": the device's update state as JSON, retained.
func (t Topics) OTAState() string { return t.base + "/ota/state" }

// Availability payloads.
const (
	Online  = "online"
	Offline = "offline"
)
