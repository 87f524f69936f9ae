"""Lua scripts of :class:`~smcp.server.core._redis_registry.RedisRegistry`.

Each script is one atomic step of the single-server join rules (``MemoryRegistry``). Keys under
the prefix ``P``: ``P:s:<sid>`` session hash (node, role, name, office, v, pid), ``P:on:<office>``
name -> sid, ``P:oz:<office>`` sids by join order, ``P:oa:<office>`` agent sids, ``P:offices``
non-empty offices, ``P:n:<node>`` sids of a node, ``P:alive:<node>`` the node's heartbeat (TTL),
``P:nodes`` known nodes, ``P:seq`` join counter. Keys are built inside the scripts, so they need a
single Redis (or one Redis Cluster slot), not a sharded one.
"""

from __future__ import annotations

__all__ = ["BEAT", "JOIN", "LEAVE", "LOOKUP", "MEMBERS", "PURGE", "REMOVE", "RESTORE"]

# Shared helpers, prepended to the scripts that need them.
_COMMON = """
local P = ARGV[1]
local function skey(sid) return P .. ':s:' .. sid end
local function drop_member(sid, role, name, office)
  local on = P .. ':on:' .. office
  if redis.call('HGET', on, name) == sid then redis.call('HDEL', on, name) end
  local oz = P .. ':oz:' .. office
  redis.call('ZREM', oz, sid)
  redis.call('SREM', P .. ':oa:' .. office, sid)
  if redis.call('ZCARD', oz) == 0 then
    redis.call('SREM', P .. ':offices', office)
    redis.call('DEL', on, oz, P .. ':oa:' .. office)
  end
  redis.call('HDEL', skey(sid), 'office')
end
local function node_alive(sid)
  local node = redis.call('HGET', skey(sid), 'node')
  if not node then return true, nil end
  return redis.call('EXISTS', P .. ':alive:' .. node) == 1, node
end
local function enter(sid, role, name, office)
  local seq = redis.call('INCR', P .. ':seq')
  redis.call('HSET', skey(sid), 'role', role, 'name', name, 'office', office)
  redis.call('HSET', P .. ':on:' .. office, name, sid)
  redis.call('ZADD', P .. ':oz:' .. office, seq, sid)
  redis.call('SADD', P .. ':offices', office)
  if role == 'agent' then redis.call('SADD', P .. ':oa:' .. office, sid) end
end
local FIELDS = {'node', 'role', 'name', 'office', 'v', 'pid'}
"""

#: ARGV: prefix, sid, role, name, office, max_agents. Returns ``{'ok', left_office, left_name,
#: entered}``, ``{'err', code, detail}`` or ``{'stale', node}`` (a dead node holds the seat or name).
JOIN = (
    _COMMON
    + """
local sid, role, name, office, max_agents = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
if redis.call('EXISTS', skey(sid)) == 0 then return {'err', 'unregistered', ''} end
local cur = redis.call('HMGET', skey(sid), 'role', 'name', 'office')
local crole, cname, coffice = cur[1], cur[2], cur[3]
if crole and crole ~= role then return {'err', 'role', crole} end
local on = P .. ':on:' .. office
local function holder_of(n)
  local h = redis.call('HGET', on, n)
  if not h or h == sid then return nil, nil end
  local alive, node = node_alive(h)
  if not alive then return nil, node end
  return h, nil
end
if coffice == office then
  if cname == name then return {'ok', '', '', 0} end
  local h, dead = holder_of(name)
  if dead then return {'stale', dead} end
  if h then return {'err', 'taken', redis.call('HGET', skey(h), 'role') or ''} end
  if cname then redis.call('HDEL', on, cname) end
  redis.call('HSET', on, name, sid)
  redis.call('HSET', skey(sid), 'name', name)
  return {'ok', office, cname or '', 1}
end
if coffice and role == 'agent' then return {'err', 'in_office', coffice} end
local h, dead = holder_of(name)
if dead then return {'stale', dead} end
if h then return {'err', 'taken', redis.call('HGET', skey(h), 'role') or ''} end
if role == 'agent' then
  local agents = redis.call('SMEMBERS', P .. ':oa:' .. office)
  for _, a in ipairs(agents) do
    local alive, node = node_alive(a)
    if not alive then return {'stale', node} end
  end
  if #agents >= max_agents then return {'err', 'seat', tostring(max_agents)} end
end
local left_office, left_name = '', ''
if coffice then
  left_office, left_name = coffice, cname or ''
  drop_member(sid, crole, cname or '', coffice)
end
enter(sid, role, name, office)
return {'ok', left_office, left_name, 1}
"""
)

#: ARGV: prefix, sid, office. Returns the session fields before leaving, or ``false``.
LEAVE = (
    _COMMON
    + """
local sid, office = ARGV[2], ARGV[3]
local cur = redis.call('HMGET', skey(sid), unpack(FIELDS))
if cur[4] ~= office then return false end
drop_member(sid, cur[2], cur[3] or '', office)
return cur
"""
)

#: ARGV: prefix, sid. Returns the session fields, or ``false`` when it was unknown.
REMOVE = (
    _COMMON
    + """
local sid = ARGV[2]
if redis.call('EXISTS', skey(sid)) == 0 then return false end
local cur = redis.call('HMGET', skey(sid), unpack(FIELDS))
if cur[4] then drop_member(sid, cur[2], cur[3] or '', cur[4]) end
redis.call('DEL', skey(sid))
if cur[1] then redis.call('SREM', P .. ':n:' .. cur[1], sid) end
return cur
"""
)

#: ARGV: prefix, office, name. Returns ``{sid, fields...}`` of a live holder, or ``false``.
LOOKUP = (
    _COMMON
    + """
local sid = redis.call('HGET', P .. ':on:' .. ARGV[2], ARGV[3])
if not sid then return false end
if not node_alive(sid) then return false end
local cur = redis.call('HMGET', skey(sid), unpack(FIELDS))
return {sid, cur[1], cur[2], cur[3], cur[4], cur[5], cur[6]}
"""
)

#: ARGV: prefix, office. Returns ``{sid, fields..., sid, fields..., ...}`` of live members in join order.
MEMBERS = (
    _COMMON
    + """
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', P .. ':oz:' .. ARGV[2], 0, -1)) do
  if node_alive(sid) then
    local cur = redis.call('HMGET', skey(sid), unpack(FIELDS))
    table.insert(out, sid)
    for i = 1, 6 do table.insert(out, cur[i] or false) end
  end
end
return out
"""
)

#: ARGV: prefix, node, ttl_ms, watched nodes... Refreshes the heartbeat. Returns ``{existed, dead
#: nodes...}``: known nodes, and watched ones (another node may have purged them already).
BEAT = """
local P, node, ttl = ARGV[1], ARGV[2], ARGV[3]
local alive = P .. ':alive:' .. node
local existed = redis.call('EXISTS', alive)
redis.call('SET', alive, '1', 'PX', ttl)
redis.call('SADD', P .. ':nodes', node)
local out = {existed}
for _, other in ipairs(redis.call('SMEMBERS', P .. ':nodes')) do
  if other ~= node and redis.call('EXISTS', P .. ':alive:' .. other) == 0 then
    table.insert(out, other)
  end
end
for i = 4, #ARGV do
  if redis.call('EXISTS', P .. ':alive:' .. ARGV[i]) == 0 then table.insert(out, ARGV[i]) end
end
return out
"""

#: ARGV: prefix, node. Forgets a node whose heartbeat expired. Returns ``{sid, fields..., ...}`` of
#: its sessions that were in an office; empty when the node is alive or was purged already.
PURGE = (
    _COMMON
    + """
local node = ARGV[2]
if redis.call('EXISTS', P .. ':alive:' .. node) == 1 then return {} end
redis.call('SREM', P .. ':nodes', node)
local out = {}
local nkey = P .. ':n:' .. node
for _, sid in ipairs(redis.call('SMEMBERS', nkey)) do
  local cur = redis.call('HMGET', skey(sid), unpack(FIELDS))
  if cur[4] then
    drop_member(sid, cur[2], cur[3] or '', cur[4])
    table.insert(out, sid)
    for i = 1, 6 do table.insert(out, cur[i] or false) end
  end
  redis.call('DEL', skey(sid))
end
redis.call('DEL', nkey)
return out
"""
)

#: ARGV: prefix, sid, node, v, pid, role, name, office. Writes a live local session back after
#: Redis lost it. Returns 1, or 0 when its name or seat was taken meanwhile (it is then outside
#: any office).
RESTORE = (
    _COMMON
    + """
local sid, node, v, pid, role, name, office = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
redis.call('HSET', skey(sid), 'node', node, 'v', v, 'pid', pid)
redis.call('SADD', P .. ':n:' .. node, sid)
if role ~= '' then redis.call('HSET', skey(sid), 'role', role, 'name', name) end
if office == '' then return 1 end
if redis.call('HGET', skey(sid), 'office') == office then return 1 end
local h = redis.call('HGET', P .. ':on:' .. office, name)
if h and h ~= sid and node_alive(h) then return 0 end
enter(sid, role, name, office)
return 1
"""
)
