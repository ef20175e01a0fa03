--- A small regular-expression engine for the `pattern` validator.
--
-- Glare's `Regex` validator takes Python `re` syntax and the JSON schema
-- republishes the same string as `pattern`, which clients read as an ECMA 262
-- regex. Lua patterns are a different language, so we compile the subset on
-- which Python and ECMA agree and reject the rest at type-load time:
--
--   literals (any UTF-8 character), `.`, `^`, `$`, `[...]` / `[^...]` with
--   ranges, `\d \D \w \W \s \S \b \B`, `\t \n \r \f \v \0 \xHH \uHHHH`,
--   escaped punctuation, groups `( )` and `(?: )`, alternation `|`,
--   quantifiers `* + ? {n} {n,} {n,m}` (each optionally lazy with `?`).
--
-- Not accepted (they differ between the two languages or need
-- backtracking): back-references, look-around, named groups, inline flags,
-- `\A \Z`, `{,n}`, a class starting with `]`, possessive quantifiers.
--
-- Matching follows Python's `re.match`: anchored at the start, the match may
-- end anywhere (anchor with `$` to require the whole value); `$` matches at
-- the end or before a final newline. Classes are ECMA's: `\d` is [0-9], `\w`
-- is [A-Za-z0-9_]. The matcher is a Pike VM (Thompson NFA simulation), so its
-- time is linear in the subject whatever the pattern: no catastrophic
-- backtracking on user-supplied values.
local regex = {}

local utf8_char, utf8_codes = utf8.char, utf8.codes
local byte, find = string.byte, string.find
local tonumber, concat = tonumber, table.concat

local MAX_REPEAT = 1000     -- largest n in {n} / {n,m}
local MAX_PROGRAM = 20000   -- instructions after expanding counted repeats

----------------------------------------------------------------------------
-- Character sets
----------------------------------------------------------------------------

local function range_set(ranges, neg)
  return { ranges = ranges, neg = neg or false }
end

local DIGIT = { { 48, 57 } }
local WORD = { { 48, 57 }, { 65, 90 }, { 95, 95 }, { 97, 122 } }
local SPACE = { { 9, 13 }, { 32, 32 }, { 0xA0, 0xA0 }, { 0x1680, 0x1680 },
  { 0x2000, 0x200A }, { 0x2028, 0x2029 }, { 0x202F, 0x202F },
  { 0x205F, 0x205F }, { 0x3000, 0x3000 }, { 0xFEFF, 0xFEFF } }
local CLASSES = { d = DIGIT, w = WORD, s = SPACE }

local function in_ranges(ranges, c)
  for i = 1, #ranges do
    local r = ranges[i]
    if c >= r[1] and c <= r[2] then return true end
  end
  return false
end

-- A set item is either a range {lo, hi} or a negated class {neg = ranges}.
local function set_has(set, c)
  local hit = false
  local items = set.ranges
  for i = 1, #items do
    local r = items[i]
    if r.neg then
      if not in_ranges(r.neg, c) then hit = true break end
    elseif c >= r[1] and c <= r[2] then
      hit = true break
    end
  end
  if set.neg then return not hit end
  return hit
end

-- Precompute membership for ASCII so the common case is one table lookup.
local function finish_set(set)
  local ascii = {}
  for c = 0, 127 do ascii[c] = set_has(set, c) end
  set.ascii = ascii
  return set
end

local function is_word(c)
  if not c then return false end
  return (c >= 48 and c <= 57) or (c >= 65 and c <= 90)
    or c == 95 or (c >= 97 and c <= 122)
end

----------------------------------------------------------------------------
-- Parser: pattern text -> AST
----------------------------------------------------------------------------

local Parser = {}
Parser.__index = Parser

local function fail(p, msg)
  error({ regex_error = ("%s at position %d"):format(msg, p.i) }, 0)
end

-- The pattern is decoded to code points so that a literal UTF-8 character is
-- one atom (and `é+` repeats the character, not its last byte).
local function decode(s)
  local cps = {}
  if not utf8.len(s) then return nil end
  for _, c in utf8_codes(s) do cps[#cps + 1] = c end
  return cps
end

function Parser:peek(k) return self.cps[self.i + (k or 0)] end
function Parser:next()
  local c = self.cps[self.i]
  if c then self.i = self.i + 1 end   -- never move past the end
  return c
end
function Parser:eat(ch)
  if self.cps[self.i] == byte(ch) then self.i = self.i + 1 return true end
  return false
end

local function hexval(p, n)
  local digits = {}
  for _ = 1, n do
    local c = p:next()
    if not c or not find(utf8_char(c), "^%x$") then
      fail(p, "bad hexadecimal escape")
    end
    digits[#digits + 1] = utf8_char(c)
  end
  return tonumber(concat(digits), 16)
end

local SIMPLE_ESC = { t = 9, n = 10, r = 13, f = 12, v = 11 }

-- Parses the character after a backslash. Returns ("char", cp),
-- ("class", ranges, negated) or ("assert", kind).
function Parser:escape(in_class)
  local c = self:next()
  if not c then fail(self, "pattern ends with a backslash") end
  local ch = utf8_char(c)
  if CLASSES[ch] then return "class", CLASSES[ch], false end
  local lower = ch:lower()
  if ch ~= lower and CLASSES[lower] then return "class", CLASSES[lower], true end
  if SIMPLE_ESC[ch] then return "char", SIMPLE_ESC[ch] end
  if ch == "b" then
    if in_class then return "char", 8 end
    return "assert", "wordb"
  end
  if ch == "B" and not in_class then return "assert", "nwordb" end
  if ch == "0" then
    local d = self:peek()
    if d and d >= 48 and d <= 57 then fail(self, "octal escapes are not supported") end
    return "char", 0
  end
  if ch == "x" then return "char", hexval(self, 2) end
  if ch == "u" then return "char", hexval(self, 4) end
  if c < 128 and not find(ch, "^%w$") then return "char", c end
  fail(self, ("unsupported escape \\%s"):format(ch))
end

function Parser:class()
  local set = { ranges = {}, neg = self:eat("^") }
  if self:peek() == 93 then -- ']'
    fail(self, "a class may not start with ']' (Python and ECMA disagree); write \\]")
  end
  local items = set.ranges
  while true do
    local c = self:next()
    if not c then fail(self, "missing ]") end
    if c == 93 then break end
    local lo
    if c == 92 then -- backslash
      local kind, a, neg = self:escape(true)
      if kind == "class" then
        if neg then
          items[#items + 1] = { neg = a }
        else
          for _, r in ipairs(a) do items[#items + 1] = r end
        end
        goto continue
      end
      lo = a
    else
      lo = c
    end
    -- a range needs '-' followed by something other than ']'
    if self:peek() == 45 and self:peek(1) and self:peek(1) ~= 93 then
      self.i = self.i + 1
      local h = self:next()
      local hi = h
      if h == 92 then
        local kind, a = self:escape(true)
        if kind ~= "char" then fail(self, "bad range in class") end
        hi = a
      end
      if hi < lo then fail(self, "bad range in class (end before start)") end
      items[#items + 1] = { lo, hi }
    else
      items[#items + 1] = { lo, lo }
    end
    ::continue::
  end
  return { t = "set", set = finish_set(set) }
end

function Parser:atom()
  local c = self:peek()
  if c == 40 then -- '('
    self.i = self.i + 1
    if self:eat("?") then
      if not self:eat(":") then
        fail(self, "only (?: ) groups are supported (no look-around, flags or named groups)")
      end
    end
    local node = self:alt()
    if not self:eat(")") then fail(self, "missing )") end
    return node
  elseif c == 91 then -- '['
    self.i = self.i + 1
    return self:class()
  elseif c == 46 then -- '.'
    self.i = self.i + 1
    return { t = "set", set = finish_set(range_set({ { 10, 10 } }, true)) }
  elseif c == 94 then self.i = self.i + 1 return { t = "assert", kind = "bol" }
  elseif c == 36 then self.i = self.i + 1 return { t = "assert", kind = "eol" }
  elseif c == 92 then
    self.i = self.i + 1
    local kind, a, neg = self:escape(false)
    if kind == "class" then
      return { t = "set", set = finish_set(range_set(a, neg)) }
    elseif kind == "assert" then
      return { t = "assert", kind = a }
    end
    return { t = "char", c = a }
  elseif c == 42 or c == 43 or c == 63 then
    fail(self, "nothing to repeat")
  elseif c == 123 then
    fail(self, "literal '{' must be escaped as \\{")
  end
  self.i = self.i + 1
  return { t = "char", c = c }
end

-- Reads {n}, {n,}, {n,m} after the '{'; returns min, max (nil = unbounded).
function Parser:braces()
  local start = self.i
  local function number()
    local digits = {}
    while self:peek() and self:peek() >= 48 and self:peek() <= 57 do
      digits[#digits + 1] = utf8_char(self:next())
    end
    if #digits == 0 then return nil end
    return tonumber(concat(digits))
  end
  local lo = number()
  if not lo then
    self.i = start
    fail(self, "bad {} quantifier ({,n} is not portable; write {0,n})")
  end
  local hi = lo
  if self:eat(",") then hi = number() end
  if not self:eat("}") then fail(self, "bad {} quantifier") end
  if lo > MAX_REPEAT or (hi and hi > MAX_REPEAT) then
    fail(self, ("repeat count above %d"):format(MAX_REPEAT))
  end
  if hi and hi < lo then fail(self, "bad {} quantifier (max below min)") end
  return lo, hi
end

function Parser:repeat_()
  local node = self:atom()
  while true do
    local c = self:peek()
    local lo, hi
    if c == 42 or c == 43 or c == 63 then -- * + ?
      self.i = self.i + 1
      lo = (c == 43) and 1 or 0
      hi = (c == 63) and 1 or nil
    elseif c == 123 then                  -- {
      self.i = self.i + 1
      lo, hi = self:braces()
    else
      return node
    end
    if node.t == "assert" then fail(self, "nothing to repeat") end
    self:eat("?") -- lazy: same language, same yes/no answer
    local nc = self:peek()
    if nc == 42 or nc == 43 or nc == 63 or nc == 123 then
      fail(self, "multiple repeat")
    end
    node = { t = "rep", node = node, min = lo, max = hi }
  end
end

function Parser:concat()
  local list = {}
  while true do
    local c = self:peek()
    if not c or c == 124 or c == 41 then break end -- end, '|', ')'
    list[#list + 1] = self:repeat_()
  end
  return { t = "cat", list = list }
end

function Parser:alt()
  local list = { self:concat() }
  while self:eat("|") do list[#list + 1] = self:concat() end
  if #list == 1 then return list[1] end
  return { t = "alt", list = list }
end

----------------------------------------------------------------------------
-- Compiler: AST -> Pike VM program
----------------------------------------------------------------------------

local function emit(prog, inst)
  prog[#prog + 1] = inst
  if #prog > MAX_PROGRAM then
    error({ regex_error = "pattern too large once repeats are expanded" }, 0)
  end
  return #prog
end

local gen

local function gen_rep(prog, node)
  for _ = 1, node.min do gen(prog, node.node) end
  if node.max == nil then
    -- L: split(body, out); body; jmp L
    local split = emit(prog, { op = "split" })
    prog[split].x = #prog + 1
    gen(prog, node.node)
    emit(prog, { op = "jmp", x = split })
    prog[split].y = #prog + 1
  else
    local splits = {}
    for _ = node.min + 1, node.max do
      local split = emit(prog, { op = "split" })
      prog[split].x = #prog + 1
      splits[#splits + 1] = split
      gen(prog, node.node)
    end
    for _, s in ipairs(splits) do prog[s].y = #prog + 1 end
  end
end

function gen(prog, node)
  local t = node.t
  if t == "char" then emit(prog, { op = "char", c = node.c })
  elseif t == "set" then emit(prog, { op = "set", set = node.set })
  elseif t == "assert" then emit(prog, { op = "assert", kind = node.kind })
  elseif t == "cat" then for _, n in ipairs(node.list) do gen(prog, n) end
  elseif t == "alt" then
    local jumps = {}
    for i, n in ipairs(node.list) do
      if i < #node.list then
        local split = emit(prog, { op = "split" })
        prog[split].x = #prog + 1
        gen(prog, n)
        jumps[#jumps + 1] = emit(prog, { op = "jmp" })
        prog[split].y = #prog + 1
      else
        gen(prog, n)
      end
    end
    for _, j in ipairs(jumps) do prog[j].x = #prog + 1 end
  elseif t == "rep" then gen_rep(prog, node)
  end
end

----------------------------------------------------------------------------
-- Matcher
----------------------------------------------------------------------------

local function subject_codes(s)
  -- ASCII fast path: bytes are code points.
  if not find(s, "[\128-\255]") then return { byte(s, 1, -1) } end
  if #s > 0 and not utf8.len(s) then return { byte(s, 1, -1) } end
  local cps = {}
  for _, c in utf8_codes(s) do cps[#cps + 1] = c end
  return cps
end

local function check_assert(kind, cps, pos, n)
  if kind == "bol" then return pos == 1
  elseif kind == "eol" then return pos == n + 1 or (pos == n and cps[n] == 10)
  end
  local a, b = is_word(cps[pos - 1]), is_word(cps[pos])
  if kind == "wordb" then return a ~= b end
  return a == b -- nwordb
end

local function run(prog, s)
  local cps = subject_codes(s)
  local n = #cps
  local clist, nlist = {}, {}
  local mark = {}   -- mark[pc] = step at which pc was added
  local step = 0
  local found = false

  local function add(list, pc, pos)
    if mark[pc] == step then return end
    mark[pc] = step
    local inst = prog[pc]
    if inst == nil then found = true return end      -- fell off the end: match
    local op = inst.op
    if op == "jmp" then return add(list, inst.x, pos)
    elseif op == "split" then
      add(list, inst.x, pos)
      return add(list, inst.y, pos)
    elseif op == "assert" then
      if check_assert(inst.kind, cps, pos, n) then return add(list, pc + 1, pos) end
      return
    end
    list[#list + 1] = pc
  end

  step = 1
  add(clist, 1, 1)
  for pos = 1, n + 1 do
    if found then return true end
    if #clist == 0 then return false end
    local c = cps[pos]
    step = step + 1
    local nn = 0
    for i = 1, #clist do
      local inst = prog[clist[i]]
      local ok
      if c == nil then ok = false
      elseif inst.op == "char" then ok = (inst.c == c)
      else
        local set = inst.set
        if c < 128 then ok = set.ascii[c] else ok = set_has(set, c) end
      end
      if ok then add(nlist, clist[i] + 1, pos + 1) end
      clist[i] = nil
      nn = nn + 1
    end
    clist, nlist = nlist, clist
  end
  return found
end

----------------------------------------------------------------------------
-- Public API
----------------------------------------------------------------------------

--- Compile `source`. Returns a matcher object `r` with `r:match(s)` (true if
-- `s` matches at its start) and `r.source`, or `nil, message`.
function regex.compile(source)
  if type(source) ~= "string" then return nil, "pattern must be a string" end
  local cps = decode(source)
  if not cps then return nil, "pattern is not valid UTF-8" end
  local p = setmetatable({ cps = cps, i = 1 }, Parser)
  local ok, res = pcall(function()
    local ast = p:alt()
    if p:peek() == 41 then fail(p, "unbalanced )") end
    local prog = {}
    gen(prog, ast)
    return prog
  end)
  if not ok then
    if type(res) == "table" and res.regex_error then return nil, res.regex_error end
    error(res, 0)
  end
  local prog = res
  return {
    source = source,
    match = function(_, s) return run(prog, s) end,
  }
end

--- Convenience: does `s` match `source` (compiled on each call)?
function regex.match(source, s)
  local r, err = regex.compile(source)
  if not r then return nil, err end
  return r:match(s)
end

return regex
