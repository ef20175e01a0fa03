--- Test type: integer fields that refuse null, one with a default (null
-- stores the default) and one without (it must be given at creation).
return glare.type {
  name = "non_nullable_fields_artifact",
  display_name = "Non-nullable fields artifact",
  version = "1.0",
  fields = {
    { int_not_nullable_with_default = glare.Integer { nullable = false, default = 0,
        description = "Never null: null and absence both give 0." } },
    { int_not_nullable_without_default = glare.Integer { nullable = false,
        required_on_activate = true,
        description = "Never null and no default: creating without it fails." } },
  },
}
