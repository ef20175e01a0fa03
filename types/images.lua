--- Images: virtual machine and container disk images, with the metadata a
-- compute service needs to boot them.
local String, Integer, Blob = glare.String, glare.Integer, glare.Blob

return glare.type {
  name = "images",
  display_name = "Images",
  version = "1.0",
  fields = {
    { container_format = String {
        allowed_values = { "ami", "ari", "aki", "bare", "ovf", "ova", "docker" },
        required_on_activate = true,
        description = "How the image data is wrapped: bare for none, or an envelope such as ovf or docker.",
    } },
    { disk_format = String {
        allowed_values = { "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso" },
        required_on_activate = true,
        description = "Format of the disk image inside the container (raw, qcow2, vmdk, ...).",
    } },
    { min_ram = Integer { min = 0,
        description = "Least amount of RAM, in MiB, an instance needs to boot the image." } },
    { min_disk = Integer { min = 0,
        description = "Least amount of disk, in GiB, an instance needs to boot the image." } },
    { image = Blob { max_blob_size = 1073741824000,
        description = "The image data itself (up to 1000 GiB)." } },
    { kernel_id = String { uuid = true,
        description = "For AMI-style images: id of the image to use as the kernel." } },
    { ramdisk_id = String { uuid = true,
        description = "For AMI-style images: id of the image to use as the ramdisk." } },
    { instance_uuid = String {
        description = "Instance this image was taken from; informational only." } },
    { architecture = String {
        description = "CPU architecture the image runs on, e.g. x86_64 or aarch64." } },
    { os_distro = String {
        description = "Operating system distribution, in lower case, e.g. ubuntu or fedora." } },
    { os_version = String {
        description = "Version of the distribution as its vendor names it, e.g. 22.04." } },
  },
}
