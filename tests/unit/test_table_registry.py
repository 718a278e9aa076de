"""Every table is declared once (constants.TABLE_SPECS) with what a successor must know about it: its env
key, data classes, how an erasure reaches it, whether the export reads it, whether it may be restored."""

from __future__ import annotations

from shared import constants as c


def test_names_and_env_keys_are_unique() -> None:
    assert len(set(c.TABLES)) == len(c.TABLE_SPECS)
    envs = [t.env for t in c.TABLE_SPECS]
    assert len(set(envs)) == len(envs) and all(e.startswith("WG_") and e.endswith("_TABLE") for e in envs)


def test_every_table_class_is_a_known_data_class_and_every_item_class_has_a_table() -> None:
    held = {cls for t in c.TABLE_SPECS for cls in t.classes}
    assert held <= set(c.DATA_CLASSES)
    assert set(c.DATA_CLASSES) - held == set()  # media records live in the contacts table


def test_what_the_export_reads_an_erasure_deletes() -> None:
    for spec in c.TABLE_SPECS:
        assert spec.erasure in (c.ERASE_PARTITION, c.ERASE_SHRED, c.ERASE_REFERENCED, c.ERASE_KEPT)
        if spec.exported:
            assert spec.erasure == c.ERASE_PARTITION, spec.name
    assert c.ERASED_BY_PARTITION == (c.TABLE_CONTACTS, c.TABLE_MESSAGES, c.TABLE_CONSENT)


def test_only_key_material_is_not_restorable() -> None:
    assert [t.name for t in c.TABLE_SPECS if not t.restorable] == [c.TABLE_KEYS]
    assert all(t.erasure == c.ERASE_SHRED for t in c.TABLE_SPECS if not t.restorable)


def test_the_derived_maps_agree_with_the_declarations() -> None:
    assert c.ENV_TABLE == {t.name: t.env for t in c.TABLE_SPECS}
    assert c.TABLE_CLASSES == {t.name: t.classes for t in c.TABLE_SPECS}
    assert c.TABLE_SPEC[c.TABLE_MESSAGES].indexes == (
        (c.GSI_BY_MSG_ID, "msg_id"),
        (c.GSI_BY_WAMID, "wamid_h"),
    )
