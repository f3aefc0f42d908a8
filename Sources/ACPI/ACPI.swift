// The ACPI module: see README.md.
