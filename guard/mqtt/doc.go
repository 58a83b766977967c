// Package mqtt publishes oodguardd's alerts over MQTT 3.1.1 with
// github.com/eclipse/paho.mqtt.golang.
//
// # Topics
//
// All topics of a device sit under "<prefix>/<device>", where prefix is Config.TopicPrefix
// (default "oodguard", may hold several levels such as "site1/oodguard") and device is
// Config.DeviceID (one level). Below it:
//
//	<prefix>/<device>/available          "online" or "offline", retained, QoS alert_qos.
//	                                     "offline" is also the last will (retained), so the broker
//	                                     publishes it when the connection drops without a clean
//	                                     disconnect. "online" is published again after every
//	                                     (re)connection, and Close publishes "offline".
//	<prefix>/<device>/events             one alert event as JSON (guard/event.Event), not retained,
//	                                     QoS alert_qos (default 1).
//	<prefix>/<device>/frames/<event-id>  the flagged frame of that event as JPEG bytes, not
//	                                     retained, QoS frame_qos (default 1). Published just before
//	                                     its event; the event's "frame" field names this topic.
//	<prefix>/<device>/stats              periodic stats as JSON (guard/event.Stats), QoS 0, not
//	                                     retained, not queued: dropped while disconnected.
//	<prefix>/<device>/source             the frame source's state as JSON ({"state": "online" or
//	                                     "offline", "source", "error", "since"}), retained, queued
//	                                     in the outbox like alerts (guard/daemon.SourceStatus).
//	<prefix>/<device>/ota/update         update commands (the device subscribes; see guard/daemon).
//	<prefix>/<device>/ota/state          the update state as JSON, retained, queued.
//
// A subscriber for one device subscribes to "<prefix>/<device>/#"; for all devices,
// "<prefix>/+/events" and "<prefix>/+/available".
//
// # Delivery
//
// Alert never publishes: it appends the frame, then the event, to a guard/outbox on disk and
// returns. One sender goroutine drains the outbox strictly in order while connected: it
// publishes the oldest message, waits for the broker's PUBACK (bounded by publish_timeout), and
// removes the message from the outbox only then. On failure it keeps the message and waits for
// the connection to come back, without polling the broker. Alerts raised while the broker is
// unreachable, or before the daemon crashed or was killed, are therefore delivered later, in
// order. With QoS 0 (frame_qos 0) a frame counts as sent once paho has written it, and may be
// lost.
//
// Delivery is at least once: a message may arrive twice, when the connection drops after the
// broker received it but before its PUBACK came back, or when the daemon dies between the PUBACK
// and removing the file. Event IDs are stable (guard/event.NewID: device, run id, frame number),
// so subscribers de-duplicate on "id". Frames of a duplicated event arrive twice on the same
// topic. If the outbox overflows it drops its oldest messages (guard/outbox), so a frame may
// then miss its event or the reverse.
//
// Order holds for one device's messages as the broker received them; an MQTT broker keeps the
// order of QoS 1 messages from one publisher to one subscriber, but a duplicate may arrive after
// later messages.
//
// # paho
//
// The client runs with AutoReconnect and ConnectRetry (the broker may be down when the daemon
// starts), CleanSession (the broker keeps no session for us) and a store that keeps nothing:
// the outbox is the only store. paho's in-memory store would resend in-flight messages itself
// after a reconnect, complete their tokens before the resent copies are acknowledged (#458,
// #563), and race with publishes made during the reconnect; without it, a publish interrupted
// by a connection loss is simply published again by the sender. OrderMatters stays at its
// default: the client subscribes to nothing, so no message handler can block paho's router.
// A broker that stays unreachable is logged at WARN from the second failed attempt on, then at
// most every 30 s; Status tells whether the client is connected (the daemon's /healthz and
// oodguard_mqtt_connected metric).
//
// Connection callbacks run in their own goroutines and only publish "online" and wake the
// sender. Every wait on a token is bounded, and so is Disconnect (0.5 s quiesce).
//
// QoS 2 gives no more than QoS 1 here: a QoS 2 flow cut by a connection loss is started again
// as a new message.
//
// # Credentials
//
// TLS applies to ssl:// and wss:// brokers (CA file, client certificate and key; certificate
// verification stays on unless insecure_skip_verify). The password comes from password_file or
// from the environment variable named by password_env, never from the configuration itself, and
// is never logged.
package mqtt
