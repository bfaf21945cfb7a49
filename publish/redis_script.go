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
// The record, published and kept in the stream (field "d"), is the GELF
// object with "_event_id" as its first member: a plain GELF subscriber
// (omhiredis's readers) still gets valid GELF, stream nodes learn the ID,
// and the script builds one string per record (the caller sends each object
// without its opening brace, which spares Lua a copy). The registry (a
// sorted set) scores each channel by the time of its latest record. Streams
// are trimmed (MAXLEN ~) once per batch, not per record.
//
// A record Redis refuses for good (its key holds another type) is skipped,
// not retried; the script returns how many were.
//
// KEYS: state hash, channel registry, the stream of each channel.
// ARGV: MAXLEN, pub/sub prefix, number of channels k, k channel names, then
// per record the channel's number (1..k) and the GELF object after its "{".
const publishScript = `
local call, pcall = redis.call, redis.pcall
local maxlen, prefix, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = call('HMGET', KEYS[1], 'ms', 'seq')
local ms, seq = tonumber(st[1]), tonumber(st[2])
local fresh = ms == nil or seq == nil
if fresh then ms, seq = 0, 0 end

-- after moves the sequence past the last ID of a stream that is ahead of
-- it (the state was lost, or the clock went back).
local function after(key)
  local info = pcall('XINFO', 'STREAM', key)
  if type(info) ~= 'table' or info.err then return false end
  for j = 1, #info - 1, 2 do
    if info[j] == 'last-generated-id' then
      local id = info[j + 1]
      local dash = string.find(id, '-', 1, true)
      local lms, lseq = tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
      if lms > ms or (lms == ms and lseq >= seq) then ms, seq = lms, lseq end
      return true
    end
  end
  return false
end

local names, used = {}, {}
for c = 1, k do names[c] = prefix .. ARGV[3 + c] end
local first, skipped = nil, 0
for i = 4 + k, #ARGV, 2 do
  local c = tonumber(ARGV[i])
  local key, rest = KEYS[2 + c], ARGV[i + 1]
  if now > ms then ms, seq = now, 0 else seq = seq + 1 end
  local id = string.format('%d-%d', ms, seq)
  local d
  if string.byte(rest, 1) == 125 then -- "}": the object was empty
    d = '{"_event_id":"' .. id .. '"}'
  else
    d = '{"_event_id":"' .. id .. '",' .. rest
  end
  local r = pcall('XADD', key, id, 'd', d)
  if type(r) == 'table' and r.err then
    r = nil
    if after(key) then
      seq = seq + 1
      local id2 = string.format('%d-%d', ms, seq)
      d = '{"_event_id":"' .. id2 .. '"' .. string.sub(d, #id + 16)
      id = id2
      r = pcall('XADD', key, id, 'd', d)
      if type(r) == 'table' and r.err then r = nil end
    end
  end
  if r == nil then
    skipped = skipped + 1
  else
    if first == nil then first = id end
    used[c] = true
    call('PUBLISH', names[c], d)
  end
end
if first ~= nil then
  call('HSET', KEYS[1], 'ms', string.format('%d', ms), 'seq', string.format('%d', seq))
  if fresh then call('HSET', KEYS[1], 'epoch', first) end
  for c in pairs(used) do
    call('XTRIM', KEYS[2 + c], 'MAXLEN', '~', maxlen)
    call('ZADD', KEYS[2], now, ARGV[3 + c])
  end
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
