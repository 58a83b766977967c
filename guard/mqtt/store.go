package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// noStore is a paho.Store that keeps nothing: the outbox is the Publisher's store.
//
// With paho's default in-memory store, every reconnect runs resume(), which resends the stored
// in-flight publishes, completes their original tokens without error before the resent copies
// are acknowledged (paho #458, #563), and sets the DUP flag on a stored packet that a publish
// made during the reconnect may be writing at that very moment (a data race the race detector
// reports). Keeping nothing avoids all three: a publish interrupted by a connection loss leaves
// its token pending, the sender notices the loss and publishes the message again itself.
//
// The cost: paho never frees the message id of such a pending token, one id (of 65535) per
// connection loss that interrupts a publish, until the process restarts.
type noStore struct{}

var _ paho.Store = noStore{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
