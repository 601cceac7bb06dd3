"""PBX drivers: one interface (`adapter.pbx.base`), one package per PBX, and `factory`, the one
place that picks the configured PBX's driver."""
