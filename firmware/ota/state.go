package ota

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/oodguard/oodguard/firmware/bundle"
)

// Phase is where the device stands in an update.
type Phase string

// The phases of an update. Idle, Committed and RolledBack are at rest; Downloading, Verifying
// and Installed last while an update runs (Recover turns them back into Idle: the update was
// interrupted and has to be asked for again); Trial lasts from the switch to Commit or Rollback,
// across daemon restarts.
const (
	PhaseIdle        Phase = "idle"        // no update running; Reason says why the last one failed, if it did
	PhaseDownloading Phase = "downloading" // fetching the bundle
	PhaseVerifying   Phase = "verifying"   // checking the bundle and extracting it into a new slot
	PhaseInstalled   Phase = "installed"   // Pending holds the verified new slot; Current is unchanged
	PhaseTrial       Phase = "trial"       // Current is the new slot, on trial; Previous is the one to go back to
	PhaseCommitted   Phase = "committed"   // the slot on trial passed its health checks
	PhaseRolledBack  Phase = "rolled_back" // the slot on trial failed; Current is the previous slot again
)

// State is the content of ota-state.json and what OnState reports. Slots are named
// VERSION-N, the name of their folder under slots/.
type State struct {
	Phase    Phase          `json:"phase"`
	Current  string         `json:"current,omitempty"`  // slot in service (on trial in PhaseTrial); "" when none
	Version  bundle.Version `json:"version,omitzero"`   // bundle version of Current
	Previous string         `json:"previous,omitempty"` // slot kept to roll back to; "" when none
	Pending  string         `json:"pending,omitempty"`  // slot installed or on trial and not yet committed
	Attempts int            `json:"attempts,omitempty"` // daemon starts on the slot on trial (see Recover)
	Reason   string         `json:"reason,omitempty"`   // why the last update failed or was rolled back
	Updated  time.Time      `json:"updated"`            // when this state was written
}

// stateVersion is the format of ota-state.json; a file with another one is not read.
const stateVersion = 1

// stateFile is ota-state.json on disk: State plus a format number.
type stateFile struct {
	Format int `json:"format"`
	State
}

func marshalState(st State) ([]byte, error) {
	b, err := json.MarshalIndent(stateFile{Format: stateVersion, State: st}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseState decodes ota-state.json strictly and checks that it is consistent.
func parseState(b []byte) (State, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f stateFile
	if err := dec.Decode(&f); err != nil {
		return State{}, fmt.Errorf("%s: %w", StateName, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return State{}, fmt.Errorf("%s: data after the state object", StateName)
	}
	if f.Format != stateVersion {
		return State{}, fmt.Errorf("%s: format %d, want %d", StateName, f.Format, stateVersion)
	}
	if err := f.State.validate(); err != nil {
		return State{}, fmt.Errorf("%s: %w", StateName, err)
	}
	return f.State, nil
}

func (st State) validate() error {
	switch st.Phase {
	case PhaseIdle, PhaseDownloading, PhaseVerifying, PhaseCommitted, PhaseRolledBack:
	case PhaseInstalled:
		if st.Pending == "" {
			return fmt.Errorf("phase %s without a pending slot", st.Phase)
		}
	case PhaseTrial:
		if st.Current == "" || st.Pending != st.Current {
			return fmt.Errorf("phase %s: pending slot %q is not the current slot %q", st.Phase, st.Pending, st.Current)
		}
	default:
		return fmt.Errorf("unknown phase %q", st.Phase)
	}
	for _, name := range []string{st.Current, st.Previous, st.Pending} {
		if name != "" && !validSlotName(name) {
			return fmt.Errorf("bad slot name %q", name)
		}
	}
	if st.Current != "" && st.Current == st.Previous {
		return fmt.Errorf("slot %q is both current and previous", st.Current)
	}
	if st.Attempts < 0 {
		return fmt.Errorf("negative attempt count %d", st.Attempts)
	}
	return nil
}
