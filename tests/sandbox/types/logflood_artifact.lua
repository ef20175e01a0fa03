--- Issue 20 item 8: a hook that logs without end, and log lines that try
-- to forge other log lines.
return glare.type {
  name = "logflood_artifact",
  display_name = "Log flood",
  version = "1.0",
  hooks = {
    pre_create = function(ctx, af)
      if af.name == "flood" then
        local big = string.rep("x", 4000)
        for i = 1, 10000 do glare.log("info", "flood", i, big) end
        for i = 1, 1000 do print("printed", i) end
      elseif af.name == "forge_line" then
        glare.log("warning", "one\n2099-01-01T00:00:00.000Z glared[1] error: forged\r\tend")
      end
    end,
  },
}
