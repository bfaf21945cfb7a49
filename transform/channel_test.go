package transform

import (
	"strings"
	"testing"
)

func TestChannelName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "unknown"},
		{"host name", "web-01.example.com", "web-01.example.com"},
		{"ipv4", "10.0.0.1", "10.0.0.1"},
		{"ipv6", "fe80::1", "fe80::1"},
		{"all allowed", "aZ09._:@-", "aZ09._:@-"},
		{"space", "my host", "my_host"},
		{"glob characters", "web-*?[a]", "web-___a_"},
		{"slash", "a/b", "a_b"},
		{"ipv6 zone", "fe80::1%eth0", "fe80::1_eth0"},
		{"invalid utf8", "a\xffb", "a_b"},
		{"multibyte is one per byte", "é", "__"},
		{"control", "a\nb\x00", "a_b_"},
		{"longest kept", strings.Repeat("a", MaxChannelName), strings.Repeat("a", MaxChannelName)},
		{"longer cut", strings.Repeat("b", MaxChannelName+40), strings.Repeat("b", MaxChannelName)},
		{"cut inside a multibyte rune", strings.Repeat("c", MaxChannelName-1) + "é", strings.Repeat("c", MaxChannelName-1) + "_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChannelName(tc.in); got != tc.want {
				t.Errorf("ChannelName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestChannelNameCleanDoesNotAllocate(t *testing.T) {
	host := "web-01.example.com"
	var got string
	allocs := testing.AllocsPerRun(100, func() { got = ChannelName(host) })
	if allocs != 0 {
		t.Errorf("ChannelName of a clean name: %v allocations, want 0", allocs)
	}
	if got != host {
		t.Errorf("ChannelName(%q) = %q", host, got)
	}
}
