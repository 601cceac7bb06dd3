"""PBX drivers: one interface (`adapter.pbx.base`), one package per PBX."""
