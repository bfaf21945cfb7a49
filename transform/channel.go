package transform

// MaxChannelName is the longest channel name, in bytes: the longest DNS
// name, so every host name fits.
const MaxChannelName = 253

// ChannelName maps a sending host or app to its channel name: bytes outside
// [A-Za-z0-9._:@-] become '_', one per byte, so spaces, glob characters and
// invalid UTF-8 never reach a channel name; a name is cut at MaxChannelName
// bytes; "" becomes "unknown". A name that is already clean is returned as
// it is, without allocating.
func ChannelName(host string) string {
	if host == "" {
		return "unknown"
	}
	if len(host) > MaxChannelName {
		host = host[:MaxChannelName]
	}
	i := 0
	for i < len(host) && channelByte(host[i]) {
		i++
	}
	if i == len(host) {
		return host
	}
	b := []byte(host)
	for ; i < len(b); i++ {
		if !channelByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func channelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '@' || c == '-'
}
