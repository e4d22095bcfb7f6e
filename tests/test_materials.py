import dataclasses

import numpy as np
import pytest

from vertebrafe import materials as M
from vertebrafe.errors import InputError, MaterialError
from vertebrafe import elasticity


# ---------------------------------------------------------------- density chain and laws

def test_conversion_chain_defaults():
    assert M.apparent_density(80) == pytest.approx(0.1333333, rel=1e-6)
    assert M.apparent_density(120) == pytest.approx(0.200, rel=1e-12)
    assert M.ash_density(120) == pytest.approx(0.120)
    assert M.bmd_from_apparent_density(0.2) == pytest.approx(120.0)
    assert M.bone_volume_fraction(0.2) == pytest.approx(0.1)
    # parameters act as documented
    assert M.apparent_density(120, ash_per_qct=0.86, ash_fraction=0.5) == pytest.approx(0.12 * 0.86 / 0.5)
    b = np.array([50.0, 80.0, 150.0])
    assert np.allclose(M.bmd_from_apparent_density(M.apparent_density(b, 0.9, 0.55), 0.9, 0.55), b)


def test_validation_target_2_morgan_vertebra():
    """literature.md validation target 2: rho_app 0.133 / 0.200 -> E = 204 / 384 MPa (1 %)."""
    assert M.cancellous_modulus(apparent_density=0.133) == pytest.approx(204.0, rel=0.01)
    assert M.cancellous_modulus(apparent_density=0.200) == pytest.approx(384.0, rel=0.01)
    assert M.cancellous_modulus(bmd=80) == pytest.approx(204.0, rel=0.01)
    assert M.cancellous_modulus(bmd=120) == pytest.approx(384.0, rel=0.01)
    # the default law is the vertebral one
    assert M.cancellous_modulus(bmd=120) == M.cancellous_modulus(bmd=120, law="morgan2003_vertebra")


def test_reference_illustration_table():
    """Every row of the literature.md 2.1 illustration (Morgan and Kopperdahl columns) within 1 MPa."""
    expected = {50: (98, 127), 80: (204, 224), 100: (289, 288), 120: (384, 353), 150: (544, 450)}
    for row in M.density_table():
        em, ek = expected[int(row["bmd"])]
        assert row["E_morgan2003_vertebra"] == pytest.approx(em, abs=1.0)
        assert row["E_kopperdahl2002"] == pytest.approx(ek, abs=1.0)


def test_morgan_sites_coefficients():
    table = {"morgan2003_vertebra": (4730, 1.56), "morgan2003_tibia": (15490, 1.93),
             "morgan2003_trochanter": (15010, 2.18), "morgan2003_femoral_neck": (6850, 1.49)}
    for name, (a, b) in table.items():
        assert M.cancellous_modulus(apparent_density=0.3, law=name) == pytest.approx(a * 0.3 ** b, rel=1e-12)
    assert "morgan2003_pooled" not in M.LAWS  # not in the reference table
    k = M.LAWS["kopperdahl2002"]
    assert k.density == "qct" and k.status == "memory"
    assert M.cancellous_modulus(bmd=100, law="kopperdahl2002") == pytest.approx(-34.7 + 323.0)
    # apparent-density input converts back to rho_QCT for a QCT-based law
    assert M.cancellous_modulus(apparent_density=M.apparent_density(100), law="kopperdahl2002") == \
        pytest.approx(-34.7 + 323.0)


@pytest.mark.parametrize("law", sorted(M.LAWS))
def test_every_law_monotone_and_positive(law):
    bmd = np.linspace(20.0, 400.0, 200)
    E = M.cancellous_modulus(bmd=bmd, law=law)
    assert E.shape == bmd.shape
    assert np.all(E > 0)
    assert np.all(np.diff(E) > 0)
    L = M.LAWS[law]
    assert L.source and L.site and L.valid_range[0] < L.valid_range[1]


def test_strict_validity_range():
    M.cancellous_modulus(bmd=100, strict=True)
    with pytest.raises(InputError, match=r"outside the validity range of law 'morgan2003_vertebra'.*0\.09"):
        M.cancellous_modulus(bmd=30, strict=True)
    # kopperdahl gives E <= 0 for very low density: a MaterialError naming the limit
    with pytest.raises(MaterialError, match=r"kopperdahl2002.*<= 0.*needs density > 0\.0107"):
        M.cancellous_modulus(bmd=5, law="kopperdahl2002")


# ---------------------------------------------------------------- anisotropy

@pytest.mark.parametrize("ratio", [0.42, 0.29, 1.0])
def test_transversely_isotropic_moduli_recovered(ratio):
    Ea = np.array([50.0, 204.0, 600.0])
    C = M.cancellous_elasticity(Ea, transverse_ratio=ratio)
    assert C.shape == (3, 6, 6)
    elasticity.validate(C)
    assert np.all(np.linalg.eigvalsh(C) > 0)
    S = np.linalg.inv(C)
    np.testing.assert_allclose(1 / S[:, 2, 2], Ea, rtol=1e-10)
    np.testing.assert_allclose(1 / S[:, 0, 0], ratio * Ea, rtol=1e-10)
    np.testing.assert_allclose(1 / S[:, 1, 1], ratio * Ea, rtol=1e-10)
    # axial Poisson ratio 0.2: transverse contraction for an axial stretch
    np.testing.assert_allclose(-S[:, 0, 2] / S[:, 2, 2], 0.2, rtol=1e-10)
    # shear rule: G_axial = E_axial sqrt(ratio) / (2 (1 + nu)) on yz and xz (Voigt 4, 5)
    G = Ea * np.sqrt(ratio) / 2.4
    np.testing.assert_allclose(1 / S[:, 4, 4], G, rtol=1e-10)
    np.testing.assert_allclose(1 / S[:, 5, 5], G, rtol=1e-10)
    np.testing.assert_allclose(1 / S[:, 3, 3], ratio * Ea / 2.4, rtol=1e-10)


def test_isotropic_limit_and_switch():
    C_iso = M.cancellous_elasticity(200.0, anisotropic=False)
    np.testing.assert_allclose(C_iso, elasticity.isotropic(200.0, 0.2))
    np.testing.assert_allclose(M.cancellous_elasticity(200.0, transverse_ratio=1.0), C_iso, rtol=1e-10)
    with pytest.raises(InputError, match=r"transverse_ratio = 1\.5.*\(0, 1\]"):
        M.cancellous_elasticity(200.0, transverse_ratio=1.5)


# ---------------------------------------------------------------- named materials

def test_named_materials_values_and_sources():
    mat = M.MATERIALS
    assert (mat["cortical_shell"].E, mat["cortical_shell"].nu) == (12000.0, 0.3)
    assert mat["cortical_shell_osteoporotic"].E == pytest.approx(0.67 * 12000, rel=1e-3)
    assert (mat["bony_endplate"].E, mat["bony_endplate"].nu) == (1000.0, 0.2)
    assert (mat["annulus_ground"].E, mat["annulus_ground"].nu) == (4.2, 0.45)
    assert (mat["nucleus"].E, mat["nucleus"].nu) == (1.0, 0.499)
    assert mat["nucleus_04999"].nu == 0.4999
    assert (mat["pmma"].E, mat["pmma"].nu) == (3000.0, 0.4)
    assert [mat[f"endplate_graded_{k}"].E for k in ("outer", "intermediate", "centre")] == [12000, 6000, 2000]
    for m in mat.values():
        assert m.source, m.name
        assert m.status in ("verified", "memory", "derived", "assumption")
        C = m.elasticity(4)
        assert C.shape == (4, 6, 6)
        elasticity.validate(C)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mat["pmma"].E = 1.0
    with pytest.raises(MaterialError, match=r"bad\.nu = 0\.5.*\(-1, 0\.5\)"):
        M.Material("bad", 10.0, 0.5, "x")


# ---------------------------------------------------------------- composite and mixtures

def test_composite_modulus_linear_fit():
    assert M.composite_modulus(0.0) == pytest.approx(2400.0)
    assert M.composite_modulus(0.25) == pytest.approx(4400.0)
    assert M.composite_modulus(0.125) == pytest.approx(3400.0)
    np.testing.assert_allclose(M.composite_modulus(np.array([0.05, 0.1])), [2800.0, 3200.0])
    with pytest.raises(InputError, match=r"bone_volume_fraction = 0\.3.*\[0, 0\.25\]"):
        M.composite_modulus(0.3)
    assert M.composite_modulus(0.3, extrapolate=True) == pytest.approx(4800.0)
    with pytest.raises(InputError, match=r"bone_volume_fraction = 1\.2.*\[0, 1\]"):
        M.composite_modulus(1.2, extrapolate=True)


@pytest.mark.parametrize("phases", [(204.0, 0.2, 3000.0, 0.4), (3000.0, 0.4, 50.0, 0.2),
                                    (100.0, 0.45, 12000.0, 0.1), (1.0, 0.49, 1000.0, 0.2)])
def test_mixture_bounds_and_endpoints(phases):
    E1, nu1, E2, nu2 = phases
    f = np.linspace(0.0, 1.0, 41)
    E = {r: M.mix(E1, nu1, E2, nu2, f, rule=r)[0]
         for r in ("reuss", "hs-lower", "hashin-shtrikman", "hs-upper", "voigt")}
    tol = 1e-9 * max(E1, E2)
    assert np.all(E["reuss"] <= E["hs-lower"] + tol)
    assert np.all(E["hs-lower"] <= E["hashin-shtrikman"] + tol)
    assert np.all(E["hashin-shtrikman"] <= E["hs-upper"] + tol)
    assert np.all(E["hs-upper"] <= E["voigt"] + tol)
    assert np.all(E["voigt"] - E["reuss"] > -tol)
    for r in E:
        e0, n0 = M.mix(E1, nu1, E2, nu2, 0.0, rule=r)
        e1, n1 = M.mix(E1, nu1, E2, nu2, 1.0, rule=r)
        assert (e0, n0) == (pytest.approx(E1, rel=1e-12), pytest.approx(nu1, rel=1e-12))
        assert (e1, n1) == (pytest.approx(E2, rel=1e-12), pytest.approx(nu2, rel=1e-12))
        assert np.all(np.diff(E[r]) * np.sign(E2 - E1) >= -tol)  # monotone between the phases


def test_mixture_same_phase_and_errors():
    E, nu = M.mix(300.0, 0.3, 300.0, 0.3, 0.37, rule="hashin-shtrikman")
    assert (E, nu) == (pytest.approx(300.0), pytest.approx(0.3))
    with pytest.raises(InputError, match=r"fraction = 1\.5.*\[0, 1\]"):
        M.mix(100, 0.2, 3000, 0.4, 1.5)
    with pytest.raises(InputError, match=r"fraction = -0\.1.*\[0, 1\]"):
        M.mix(100, 0.2, 3000, 0.4, -0.1)
    with pytest.raises(InputError, match=r"rule = 'mean'.*voigt.*reuss.*hashin-shtrikman"):
        M.mix(100, 0.2, 3000, 0.4, 0.5, rule="mean")


def test_compacted_bone():
    assert M.compacted_bone_modulus(200.0) == pytest.approx(400.0)
    assert M.compacted_bone_modulus(200.0, factor=1.5) == pytest.approx(300.0)
    assert M.CONSTANTS["compacted_factor"].status == "assumption"


# ---------------------------------------------------------------- subject helpers

def test_bmd_category_boundaries():
    assert M.bmd_category(79.999) == "osteoporotic"
    assert M.bmd_category(80.0) == "low"       # 80 <= low (guideline table)
    assert M.bmd_category(120.0) == "low"      # low <= 120; normal is strictly > 120
    assert M.bmd_category(120.001) == "normal"
    cats = M.bmd_category(np.array([50.0, 80.0, 100.0, 120.0, 150.0]))
    assert list(cats) == ["osteoporotic", "low", "low", "low", "normal"]


def test_t_score_round_trip():
    b = np.array([40.0, 80.0, 120.0, 170.0, 250.0])
    np.testing.assert_allclose(M.bmd_from_t_score(M.t_score(b)), b, rtol=1e-12)
    t = np.array([-4.0, -2.5, -1.0, 0.0, 1.5])
    np.testing.assert_allclose(M.t_score(M.bmd_from_t_score(t)), t, atol=1e-12)
    assert M.t_score(170.0) == pytest.approx(0.0)
    assert M.t_score(110.0, young_mean=160.0, young_sd=25.0) == pytest.approx(-2.0)
    assert M.bmd_from_t_score(-2.0, young_mean=160.0, young_sd=25.0) == pytest.approx(110.0)
    with pytest.raises(InputError, match=r"t = -6 gives bmd = -10 mg/cm\^3"):
        M.bmd_from_t_score(-6.0)
    with pytest.raises(InputError, match=r"young_sd = 0"):
        M.t_score(100.0, young_sd=0.0)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("bad", [0.0, -5.0, 400.5, np.nan])
def test_bmd_out_of_range(bad):
    with pytest.raises(InputError, match=r"bmd = .* mg/cm\^3; allowed range \(0, 400\] mg/cm\^3"):
        M.cancellous_modulus(bmd=bad)
    with pytest.raises(InputError, match=r"bmd = "):
        M.bmd_category(bad)


def test_bad_inputs_messages():
    assert M.cancellous_modulus(bmd=400.0) > 0  # inclusive upper limit
    with pytest.raises(InputError, match=r"law = 'morgan'.*known: \['kopperdahl2002', 'morgan2003_femoral_neck'"):
        M.cancellous_modulus(bmd=100, law="morgan")
    with pytest.raises(InputError, match="exactly one of bmd"):
        M.cancellous_modulus(bmd=100, apparent_density=0.2)
    with pytest.raises(InputError, match="exactly one of bmd"):
        M.cancellous_modulus()
    with pytest.raises(InputError, match=r"bmd = 500\.0 mg/cm\^3 at index 1"):
        M.apparent_density(np.array([100.0, 500.0]))
    with pytest.raises(InputError, match=r"apparent_density = 1\.5 g/cm\^3; allowed range \(0, 1\]"):
        M.cancellous_modulus(apparent_density=1.5)
    with pytest.raises(InputError, match=r"ash_fraction = 0.*\(0, 1\]"):
        M.apparent_density(100, ash_fraction=0.0)


# ---------------------------------------------------------------- MaterialSet

def test_cortical_modulus_follows_the_qct_category_without_jumps():
    # PMC12452785 Table 3: osteoporosis 4700, osteopenia 8350, normal 12 000 MPa
    np.testing.assert_allclose(M.cortical_modulus([40.0, 80.0, 120.0, 200.0]), [4700.0, 4700.0, 12000.0, 12000.0])
    band = np.linspace(80.0, 120.0, 401)
    assert M.cortical_modulus(band).mean() == pytest.approx(8350.0, rel=1e-9)
    assert np.all(np.diff(M.cortical_modulus(band)) > 0)
    ms = M.MaterialSet(bmd=100.0)
    assert ms.cortical_material.E == pytest.approx(8350.0)
    assert ms.with_(bmd=60.0).cortical_material.E == 4700.0       # follows bmd on replace
    assert {r["item"] for r in ms.describe()} >= {"cortical.E (cortical_shell_by_bmd)"}
    with pytest.raises(InputError, match="bmd"):
        M.cortical_modulus(-5.0)


def test_material_set_regions_and_describe():
    ms = M.MaterialSet(bmd=80.0)
    assert ms.category == "low"
    assert ms.cancellous_E == pytest.approx(204.0, rel=0.01)
    assert ms.region_elasticity("cancellous").shape == (6, 6)
    for region in M.REGIONS:
        C = ms.region_elasticity(region, 3)
        assert C.shape == (3, 6, 6)
        elasticity.validate(C)
    np.testing.assert_allclose(ms.region_elasticity("cortex"), elasticity.isotropic(4700.0, 0.3))
    np.testing.assert_allclose(ms.region_elasticity("cortical_shell"), ms.region_elasticity("cortex"))
    fixed = ms.with_(cortical="cortical_shell")
    np.testing.assert_allclose(fixed.region_elasticity("cortex"), elasticity.isotropic(12000.0, 0.3))
    assert fixed.with_(bmd=150).cortical_material.E == 12000.0
    np.testing.assert_allclose(ms.region_elasticity("compacted_bone"),
                               elasticity.isotropic(2 * ms.cancellous_E, 0.2))
    # cement-bone composite: between bone and composite fit scaled to the chosen cement
    cb = ms.cement_bone()
    assert cb.E == pytest.approx(3000.0 / 2400.0 * (2400.0 + 8000.0 * ms.bone_volume_fraction))
    rows = ms.describe()
    assert all(set(r) == {"item", "value", "unit", "source", "status"} for r in rows)
    items = {r["item"]: r for r in rows}
    for key in ("bmd", "law", "apparent_density", "cancellous_E_axial", "yield_strain_compression",
                "yield_strain_tension", "compacted_factor", "cement.E (pmma)", "nucleus.nu (nucleus)"):
        assert key in items
    assert items["yield_strain_compression"]["value"] == 0.0077
    assert items["yield_strain_tension"]["value"] == 0.0070
    assert all(r["source"] for r in rows)


def test_material_set_anisotropic_and_cells():
    ms = M.MaterialSet(bmd=120.0, anisotropic=True, transverse_ratio=0.29, nucleus="nucleus_04999")
    assert ms.nucleus.nu == 0.4999
    S = np.linalg.inv(ms.region_elasticity("cancellous"))
    assert 1 / S[2, 2] == pytest.approx(ms.cancellous_E, rel=1e-10)
    assert 1 / S[0, 0] == pytest.approx(0.29 * ms.cancellous_E, rel=1e-10)
    assert "cancellous_G_axial" in {r["item"] for r in ms.describe()}
    tags = np.array([3, 1, 2, 2, 1, 3])
    names = {1: "cortex", 2: "cancellous", 3: "nucleus"}
    C = ms.cell_elasticity(tags, names)
    assert C.shape == (6, 6, 6)
    for i, t in enumerate(tags):
        np.testing.assert_allclose(C[i], ms.region_elasticity(names[t]))
    with pytest.raises(InputError, match=r"region tags \[4\] have no name"):
        ms.cell_elasticity(np.array([1, 4]), names)
    with pytest.raises(InputError, match=r"region = 'bone' is not a known material region; known: \['cortex'"):
        ms.region_elasticity("bone")
    # frozen, validated replace
    with pytest.raises(dataclasses.FrozenInstanceError):
        ms.bmd = 10.0
    assert ms.with_(bmd=60.0).category == "osteoporotic"
    with pytest.raises(InputError, match=r"bmd = -1\.0 mg/cm\^3"):
        ms.with_(bmd=-1.0)
    with pytest.raises(InputError, match=r"law = 'x'.*known"):
        M.MaterialSet(bmd=100.0, law="x")
    with pytest.raises(InputError, match=r"cement = 'steel' is not a Material nor a known name"):
        M.MaterialSet(bmd=100.0, cement="steel")


def test_docs_table_matches_code():
    from pathlib import Path
    doc = Path(__file__).resolve().parents[1] / "docs" / "materials.md"
    if not doc.exists():
        pytest.skip("docs/materials.md not present")
    lines = {ln.split("|")[1].strip(): ln for ln in doc.read_text().splitlines()
             if ln.startswith("| ") and ln.split("|")[1].strip() in ("50", "80", "100", "120", "150")}
    for row in M.density_table():
        cells = [c.strip() for c in lines[f"{row['bmd']:g}"].split("|")[1:-1]]
        assert cells == [f"{row['bmd']:g}", f"{row['rho_app']:.3f}", row["category"], f"{row['bv_tv']:.3f}",
                         f"{row['E_morgan2003_vertebra']:.0f}", f"{row['E_kopperdahl2002']:.0f}"]
