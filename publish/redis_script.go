package publish

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// publishScript appends a batch of records to their channels' streams and
// publishes each with its new ID, in one call per batch.
//
// IDs come from one sequence for all channels (the state hash), not from
// each stream's own "*": two channels never share an ID and IDs increase
// across channels in publish order. Since PUBLISH runs in the same atomic
// script, pub/sub delivers records in ID order, so a glob subscription
// resumes from one ID without gap or duplicate. The state hash also records
// the epoch, the first ID of this Redis's life: a resume ID older than it
// comes from data Redis has lost.
//
// The published payload is the GELF object with "_event_id" as its first
// member, so a plain GELF subscriber (omhiredis's readers) still gets valid
// GELF and stream nodes learn the ID. The registry (a sorted set) scores each
// channel by the time of its latest record.
//
// A record Redis refuses for good (its key holds another type) is skipped,
// not retried; the script returns how many were.
//
// KEYS: state hash, channel registry, the stream of each channel.
// ARGV: MAXLEN, pub/sub prefix, number of channels k, k channel names, then
// per record the channel's number (1..k) and the GELF object.
const publishScript = `
local maxlen, prefix, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', KEYS[1], 'ms', 'seq')
local ms, seq = tonumber(st[1]), tonumber(st[2])
local fresh = ms == nil or seq == nil
if fresh then ms, seq = 0, 0 end
local first, skipped, used = nil, 0, {}
for i = 4 + k, #ARGV, 2 do
  local c = tonumber(ARGV[i])
  local key, g = KEYS[2 + c], ARGV[i + 1]
  if now > ms then ms, seq = now, 0 else seq = seq + 1 end
  local id = string.format('%d-%d', ms, seq)
  local r = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id, 'd', g)
  if type(r) == 'table' and r.err then
    -- the stream is ahead of the sequence (state lost, clock went back)
    r = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, '*', 'd', g)
    if type(r) == 'table' and r.err then
      id = nil
    else
      id = r
      local dash = string.find(id, '-', 1, true)
      ms, seq = tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
    end
  end
  if id == nil then
    skipped = skipped + 1
  else
    if first == nil then first = id end
    used[c] = true
    if string.find(g, '^{%s*}') then
      redis.call('PUBLISH', prefix .. ARGV[3 + c], '{"_event_id":"' .. id .. '"}')
    else
      redis.call('PUBLISH', prefix .. ARGV[3 + c], '{"_event_id":"' .. id .. '",' .. string.sub(g, 2))
    end
  end
end
if first ~= nil then
  redis.call('HSET', KEYS[1], 'ms', string.format('%d', ms), 'seq', string.format('%d', seq))
  if fresh then redis.call('HSET', KEYS[1], 'epoch', first) end
  for c in pairs(used) do redis.call('ZADD', KEYS[2], now, ARGV[3 + c]) end
end
return skipped
`

// publishScriptSHA returns the SHA1 that EVALSHA names publishScript by.
func publishScriptSHA() string {
	h := sha1.Sum([]byte(publishScript))
	return hex.EncodeToString(h[:])
}

// loadScript makes sure Redis knows publishScript (after a restart it does
// not: EVALSHA then answers NOSCRIPT).
func loadScript(ctx context.Context, c *redis.Client, want string) error {
	sha, err := c.ScriptLoad(ctx, publishScript).Result()
	if err != nil {
		return fmt.Errorf("script load: %w", err)
	}
	if sha != want {
		return fmt.Errorf("script load: redis named the script %s, want %s", sha, want)
	}
	return nil
}
