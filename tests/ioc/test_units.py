"""The administrative-units tree: both editions, subtree queries, lookups and the reform mapping."""

from __future__ import annotations

import pytest

from ioc import units


def test_binh_duong_2024_has_one_province_nine_districts_ninety_one_communes() -> None:
    tree = units.load_tree("2024")
    assert len(tree.at_level("province")) == 1
    assert len(tree.at_level("district")) == 9
    assert len(tree.at_level("commune")) == 91
    assert [u.code for u in tree.roots] == ["74"]
    assert tree.subtree("74") == frozenset(u.code for u in tree)


def test_subtree_path_and_ancestors() -> None:
    tree = units.load_tree("2024")
    di_an = tree.subtree("724")
    assert {"724", "25957", "25951", "25942"} <= di_an
    assert "25747" not in di_an
    assert tree.path("25957") == "74/724/25957"
    assert [u.code for u in tree.ancestors("25957")] == ["74", "724"]
    assert tree.is_within("25957", "74") and not tree.is_within("74", "25957")
    assert tree.subtree("25957") == frozenset({"25957"})


def test_lookup_by_ascii_name_with_or_without_type_and_diacritics() -> None:
    tree = units.load_tree("2024")
    assert tree.find("Đông Hòa").code == "25957"
    assert tree.find("phuong dong hoa").code == "25957"
    assert tree.find("  DONG   HOA ").code == "25957"
    assert tree.find("Dĩ An", level="district").code == "724"
    assert tree.find("Dĩ An", level="commune").code == "25942"
    with pytest.raises(units.UnknownUnitError, match="several units"):
        tree.find("Di An")
    with pytest.raises(units.UnknownUnitError, match="no unit named"):
        tree.find("Atlantis")
    with pytest.raises(units.UnknownUnitError, match="no unit with code"):
        tree.get("99999")


def test_ascii_fold() -> None:
    assert units.ascii_fold("Thủ Dầu Một") == "thu dau mot"
    assert units.ascii_fold("Đ đ") == "d d"


def test_2025_edition_is_two_tiers_under_hcmc() -> None:
    tree = units.load_tree("2025")
    (root,) = tree.roots
    assert root.code == units.HCMC_CODE
    assert {u.level for u in tree if u.code != root.code} == {units.Level.COMMUNE}
    assert all(u.parent == root.code for u in tree if u.code != root.code)
    assert len(tree) == 37


def test_reform_mapping_covers_every_old_commune() -> None:
    old = units.load_tree("2024")
    communes = {u.code for u in old.at_level("commune")}
    assert {link.old_code for link in units.reform_links()} == communes
    assert units.legacy_codes(units.HCMC_CODE) == communes
    split = units.successors("25741")
    assert len(split) == 2 and {link.relation for link in split} == {"partial"}
    # A new unit sees the old communes it absorbed: new Thủ Dầu Một took Phú Cường whole.
    assert "25747" in units.legacy_codes("25747")


def test_duplicate_codes_and_dangling_parents_are_refused() -> None:
    unit = units.Unit("1", "A", "A", units.Level.PROVINCE, "tỉnh", None, 0, 0)
    with pytest.raises(ValueError, match="appears twice"):
        units.UnitTree("x", [unit, unit])
    orphan = units.Unit("2", "B", "B", units.Level.DISTRICT, "huyện", "9", 0, 0)
    with pytest.raises(ValueError, match="parent 9"):
        units.UnitTree("x", [unit, orphan])


def test_unknown_edition() -> None:
    with pytest.raises(units.UnknownUnitError, match="edition"):
        units.load_tree("1999")  # type: ignore[arg-type]
