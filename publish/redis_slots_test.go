package publish

import "testing"

// TestKeySlot checks keySlot against slots Redis gives (CLUSTER KEYSLOT).
func TestKeySlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		slot int
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
	} {
		if got := keySlot(tc.key); got != tc.slot {
			t.Errorf("keySlot(%q) = %d, want %d", tc.key, got, tc.slot)
		}
	}
	tags := slotTags()
	for slot, tag := range tags {
		if keySlot("x{"+tag+"}") != slot {
			t.Fatalf("tag %q is not of slot %d", tag, slot)
		}
	}
}
