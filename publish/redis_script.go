package publish

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Echo modes of publishScript (--redis-publish-records).
const (
	echoNone   = 0 // no per-record PUBLISH
	echoPlain  = 1 // each record's GELF as ingest made it (--gelf-compat: the five fields)
	echoWithID = 2 // each record's GELF with "_event_id" first
)

// publishScript writes one flush of one shard: per channel one stream entry
// holding all of the channel's records of the flush (fields n and b, see
// redis_batch.go), then one notification for the whole flush, then, when
// asked, one plain PUBLISH per record on its channel (the proof of
// concept's layout, for consumers written against it).
//
// Record IDs come from one sequence for the shard (the state hash), not from
// each stream's own "*": a flush of n records takes n numbers of it, one per
// record in publish order, and an entry's ID is its first record's, so
// record IDs never repeat across channels and increase in publish order. The notification is published in the same
// atomic script, so pub/sub delivers records in ID order and a glob
// subscription resumes from one ID without gap or duplicate. The state hash
// also records the epoch, the first ID of this Redis's life: a resume ID
// older than it comes from data Redis has lost.
//
// History is bounded in records, not entries: a counter per channel counts
// the records written, and a list of marks (the counter and the entry ID,
// one every step records) tells which entries hold only records older than
// the last History; XTRIM MINID drops them. A channel keeps between History
// and History + step + one flush of records.
//
// An entry Redis refuses for good (its key holds another type) is skipped,
// not retried; the script returns how many records were.
//
// KEYS: state hash, channel registry, then per channel its stream, counter
// and marks list.
// ARGV: History, step, pub/sub prefix, notification channel, echo mode,
// number of channels k, number of records, per channel its name, the
// position of its first record in the flush, its record count and blob,
// then (echo modes only) per record in flush order the channel's number
// (1..k) and its GELF (echoWithID: after its "{").
const publishScript = `
local call, pcall = redis.call, redis.pcall
local hist, step, prefix, notify = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local echo, k = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = call('HMGET', KEYS[1], 'ms', 'seq')
local ms, seq = tonumber(st[1]), tonumber(st[2])
local fresh = ms == nil or seq == nil
if fresh then ms, seq = 0, 0 end

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

-- after moves the sequence past the last record of a stream that is ahead
-- of it (the state was lost, or the clock went back).
local function after(key)
  local e = pcall('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if type(e) ~= 'table' or e.err or #e == 0 then return false end
  local n, f = 1, e[1][2]
  for j = 1, #f - 1, 2 do
    if f[j] == 'n' then n = tonumber(f[j + 1]) or 1 end
  end
  local lms, lseq = parse(e[1][1])
  lseq = lseq + n - 1
  if lms > ms or (lms == ms and lseq >= seq) then ms, seq = lms, lseq end
  return true
end

local total = tonumber(ARGV[7])
if now > ms then ms, seq = now, 0 else seq = seq + 1 end
local bms, bseq = ms, seq -- the ID of the flush's first record
seq = bseq + total - 1
local out, first, skipped, echoed = {}, nil, 0, 0
local cms, cseq = {}, {}
for c = 1, k do
  local name, off, n, blob = ARGV[4 + 4 * c], tonumber(ARGV[5 + 4 * c]), tonumber(ARGV[6 + 4 * c]), ARGV[7 + 4 * c]
  local key = KEYS[3 * c]
  local id = string.format('%d-%d', bms, bseq + off)
  local r = pcall('XADD', key, id, 'n', n, 'b', blob)
  if type(r) == 'table' and r.err then
    r = nil
    if after(key) then
      bms, bseq = ms, seq + 1
      seq = bseq + total - 1
      id = string.format('%d-%d', bms, bseq + off)
      r = pcall('XADD', key, id, 'n', n, 'b', blob)
      if type(r) == 'table' and r.err then r = nil end
    end
  end
  if r == nil then
    skipped = skipped + n
  else
    if first == nil then first = id end
    cms[c], cseq[c] = bms, bseq
    echoed = echoed + n
    local cum = call('INCRBY', KEYS[3 * c + 1], n)
    if math.floor(cum / step) ~= math.floor((cum - n) / step) then
      call('RPUSH', KEYS[3 * c + 2], cum .. ' ' .. id)
    end
    while true do
      local m = call('LINDEX', KEYS[3 * c + 2], 0)
      if not m then break end
      local sp = string.find(m, ' ', 1, true)
      if tonumber(string.sub(m, 1, sp - 1)) > cum - hist then break end
      local mms, mseq = parse(string.sub(m, sp + 1))
      call('XTRIM', key, 'MINID', string.format('%d-%d', mms, mseq + 1))
      call('LPOP', KEYS[3 * c + 2])
    end
    call('ZADD', KEYS[2], now, name)
    out[#out + 1] = name .. '\n' .. id .. '\n' .. n .. '\n' .. #blob .. '\n'
    out[#out + 1] = blob
  end
end
if first == nil then return skipped end
if echo == 0 then echoed = 0 end
call('PUBLISH', notify, 'LVB1\n' .. echoed .. '\n' .. table.concat(out))
call('HSET', KEYS[1], 'ms', string.format('%d', ms), 'seq', string.format('%d', seq))
if fresh then call('HSET', KEYS[1], 'epoch', first) end
if echo ~= 0 then
  local i = 0
  for a = 8 + 4 * k, #ARGV, 2 do
    local c = tonumber(ARGV[a])
    if cms[c] then
      local g = ARGV[a + 1]
      if echo == 2 then
        local id = string.format('%d-%d', cms[c], cseq[c] + i)
        if string.byte(g, 1) == 125 then
          g = '{"_event_id":"' .. id .. '"}'
        else
          g = '{"_event_id":"' .. id .. '",' .. g
        end
      end
      call('PUBLISH', prefix .. ARGV[4 + 4 * c], g)
    end
    i = i + 1
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
func loadScript(ctx context.Context, c redis.Scripter, want string) error {
	sha, err := c.ScriptLoad(ctx, publishScript).Result()
	if err != nil {
		return fmt.Errorf("script load: %w", err)
	}
	if sha != want {
		return fmt.Errorf("script load: redis named the script %s, want %s", sha, want)
	}
	return nil
}
