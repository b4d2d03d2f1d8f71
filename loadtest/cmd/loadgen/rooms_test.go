package main

import "testing"

func TestRoomSpread(t *testing.T) {
	tests := []struct {
		subs, targets, rooms int
	}{
		{12, 1, 3},
		{12, 4, 3},
		{96, 4, 12}, // rooms a multiple of targets: i mod rooms would put each room on one target
		{10, 2, 1},
	}
	for _, tt := range tests {
		// members[room][target]
		members := make([][]int, tt.rooms)
		for r := range members {
			members[r] = make([]int, tt.targets)
		}
		for i := range tt.subs {
			members[subscriberRoom(i, tt.targets, tt.rooms)][i%tt.targets]++
		}
		want := tt.subs / tt.rooms / tt.targets
		for r := range members {
			for ti, n := range members[r] {
				if n != want {
					t.Errorf("%d subs, %d targets, %d rooms: room %d has %d members on target %d, want %d",
						tt.subs, tt.targets, tt.rooms, r, n, ti, want)
				}
			}
		}
	}
}

func TestPublishRoomRotates(t *testing.T) {
	const rooms = 4
	for idx := range 3 {
		seen := map[int]int{}
		for id := uint64(1); id <= 2*rooms; id++ {
			seen[publishRoom(idx, id, rooms)]++
		}
		for r := range rooms {
			if seen[r] != 2 {
				t.Errorf("publisher %d: room %d got %d of %d publishes, want 2", idx, r, seen[r], 2*rooms)
			}
		}
		if got := publishRoom(idx, 1, rooms); got != idx%rooms {
			t.Errorf("publisher %d starts at room %d, want %d", idx, got, idx%rooms)
		}
	}
	if got := publishRoom(5, 7, 1); got != 0 {
		t.Errorf("one room: publish went to room %d", got)
	}
	if got := roomName("bench", 1, 0); got != "bench" {
		t.Errorf("one room is named %q, want the -room name", got)
	}
	if got := roomName("bench", 3, 2); got != "bench-2" {
		t.Errorf("room 2 of 3 is named %q", got)
	}
}
