-- Filter operators (docs/glare-contract.md "Filter operators") and
-- filter-value coercion.
local fields = require("glare.fields")
local runtime = require("glare.runtime")
local H = dofile("tests/lua/helpers.lua")

describe("filters", function()
  describe("default and allowed operators per kind", function()
    local EXPECT = {
      String = { "eq neq in", "eq in like neq" },
      Integer = { "eq neq in gt gte lt lte", "eq gt gte in like lt lte neq" },
      Float = { "eq neq in gt gte lt lte", "eq gt gte in like lt lte neq" },
      Version = { "eq neq in gt gte lt lte", "eq gt gte in like lt lte neq" },
      Boolean = { "eq neq", "eq neq" },
      Link = { "eq neq", "eq neq" },
      DateTime = { "lt gt", "gt lt" },
      Blob = { "", "" },
      Folder = { "", "" },
    }
    for kind, e in pairs(EXPECT) do
      it(kind, function()
        local row = fields.FILTER_OPS[kind]
        local allowed = {}
        for op in pairs(row.allowed) do allowed[#allowed + 1] = op end
        table.sort(allowed)
        assert.same(e, { table.concat(row.default, " "), table.concat(allowed, " ") })
      end)
    end
    it("collections use their element kind", function()
      assert.equal(fields.FILTER_OPS.Integer, fields.filter_ops_for("List", "Integer"))
      assert.equal(fields.FILTER_OPS.Link, fields.filter_ops_for("Dict", "Link"))
    end)
    it("a compiled field gets the kind default unless it declares its own (even [])", function()
      local T = assert(H.load([[return glare.type { name = "fo", fields = {
        { a = glare.Integer {} }, { b = glare.Integer { filter_ops = {} } },
        { c = glare.List { of = glare.Boolean } }, { d = glare.String { filter_ops = { "like" } } } } }]]))
      assert.same({ "eq", "neq", "in", "gt", "gte", "lt", "lte" }, T.by_name.a.filter_ops)
      assert.same({}, T.by_name.b.filter_ops)
      assert.same({ "eq", "neq" }, T.by_name.c.filter_ops)
      assert.same({ "like" }, T.by_name.d.filter_ops)
    end)
  end)

  describe("coerce_filter", function()
    local T = H.type("sample_artifact")
    local function cf(field, value, element) return runtime.coerce_filter(T, field, value, element) end

    it("coerces query strings to the field kind", function()
      assert.equal(2050, cf("int1", "2050"))
      assert.equal(1.5, cf("float1", "1.5"))
      assert.is_true(cf("bool1", "true"))
      assert.is_false(cf("bool1", "false"))
      assert.equal("2.0.0", cf("version", "2.0"))
      assert.equal("10.0.0-rc1", cf("version", "10-rc1"))
      assert.equal("2017-08-03T10:20:30Z", cf("created_at", "2017-08-03T12:20:30+02:00"))
      assert.equal("name%", cf("name", "name%"))
    end)

    it("applies the field's validators (name= is 400, visibility=blabla is 400)", function()
      assert.equal("Type: sample_artifact. Field: name. Exception: String length must be at least 1 (got 0)",
        select(2, cf("name", "")))
      assert.equal("Type: sample_artifact. Field: visibility. Exception: Value 'blabla' is not allowed; "
        .. "it must be one of: private, public",
        select(2, cf("visibility", "blabla")))
      assert.equal("Type: sample_artifact. Field: int1. Exception: 'x' is not an integer",
        select(2, cf("int1", "x")))
      assert.equal("Type: sample_artifact. Field: status. Exception: Value 'bogus' is not allowed; "
        .. "it must be one of: drafted, active, deactivated, deleted", select(2, cf("status", "bogus")))
    end)

    it("coerces to the element kind for List and Dict value filters", function()
      assert.equal(5, cf("list_of_int", "5", true))
      assert.equal(5, cf("list_of_int", "5"))            -- a List filter is always per element
      assert.equal(7, cf("dict_of_int", "7", true))      -- dict_of_int.key=7
      assert.equal("Type: sample_artifact. Field: dict_of_int. Exception: 'x' is not an integer",
        select(2, cf("dict_of_int", "x", true)))
      assert.equal("Type: sample_artifact. Field: tags. Exception: Forbidden character ',' found in string 'a,b'",
        select(2, cf("tags", "a,b", true)))
    end)

    it("coerces a Dict key for presence filters (element 'key' or falsy)", function()
      assert.equal("abc", cf("dict_of_int", "abc", "key"))
      assert.equal("abc", cf("dict_of_int", "abc"))
      assert.equal("Type: sample_artifact. Field: dict_of_int. Exception: Dict key '' is shorter than 1 character",
        select(2, cf("dict_of_int", "", "key")))
    end)

    it("refuses blob fields and unknown fields", function()
      assert.equal("Type: sample_artifact. Field: blob. Exception: Blob fields cannot be filtered",
        select(2, cf("blob", "x")))
      assert.equal("Type: sample_artifact. Field: dict_of_blobs. Exception: Blob fields cannot be filtered",
        select(2, cf("dict_of_blobs", "x", "key")))
      assert.equal("Type: sample_artifact. Field: zzz. Exception: unknown field", select(2, cf("zzz", "x")))
    end)
  end)
end)
