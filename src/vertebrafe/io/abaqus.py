"""CalculiX / Abaqus input deck (``.inp``) of a complete :class:`~vertebrafe.Model`.

What is written (see docs/interop.md for the full mapping):

* ``*NODE``, ``*ELEMENT`` (one block per element type; VTK and Abaqus share the hex8, tet4 and tet10
  node orders), ``*ELSET`` per named tag value (``REGION_CORTEX``, ``LEVEL_L1``...) and per material,
  ``*NSET`` per node set, ``NALL`` and ``EALL``;
* one ``*MATERIAL`` per distinct elasticity matrix: ``*ELASTIC`` (E, nu) when isotropic, else
  ``*ELASTIC, TYPE=ANISO`` with the 21 constants D1111, D1122, D2222, D1133, D2233, D3333, D1112, D2212,
  D3312, D1212, D1113, D2213, D3313, D1213, D1313, D1123, D2223, D3323, D1223, D1323, D2323. These are
  tensor components, and ``D1212 = C[xy, xy]`` of vertebrafe's engineering-shear Voigt matrix (since
  ``sigma_12 = D1212 (eps_12 + eps_21) = D1212 gamma_12``): the numbers carry over unchanged;
* each rigid plate as two extra nodes: a reference node at the plate centre whose DOFs 1-3 are the
  translation ``t`` and a rotation node whose DOFs 1-3 carry the small rotation ``theta`` (rad), tied to
  the plate's nodes by the linear ``*EQUATION`` constraints ``u_i = t + theta x (x_i - c)`` that
  vertebrafe eliminates exactly; the plate force goes on the reference node and the moment (N mm) on
  the rotation node (``*CLOAD``) and its prescribed motion is ``*BOUNDARY`` on these nodes. CalculiX's
  ``RF`` is the internal force K u of a node, zero on these element-free nodes: a plate's reaction is
  the sum of ``RF`` over its tied nodes (and of ``(x_i - c) x RF_i`` for the moment) minus the loads the
  plate carries, as :meth:`vertebrafe.Solution.plate_reaction` computes it;
* the cells' initial stress (:attr:`vertebrafe.fem.Model.initial_stress`, a nucleus swelling pressure), if
  any: ``*INITIAL CONDITIONS, TYPE=STRESS`` with the cell's stress at each of its integration points
  (S11, S22, S33, S12, S13, S23); CalculiX's stress is then ``C eps + sigma_0`` and its internal forces carry
  ``int B^T sigma_0 dV``, as vertebrafe's (checked with ccx in ``tests/io/test_abaqus_ccx.py``);
* one linear ``*STATIC`` step: ``*BOUNDARY`` for fixed and prescribed DOFs, ``*CLOAD`` for every
  nodal force (tractions, pressures, body and follower loads are already nodal forces in the model;
  forces on tied nodes are carried to their plate exactly as vertebrafe does), and the outputs
  ``*NODE PRINT`` U and RF of all nodes (``.dat``), ``*NODE FILE`` U, RF and ``*EL FILE`` S, E (``.frd``).

Element types: ``"full"`` hex8 -> C3D8 (2x2x2 Gauss points, exactly vertebrafe's), ``"incompatible"``
-> C3D8I, tet4 -> C3D4, tet10 -> C3D10. B-bar hex8 has no exact CalculiX counterpart; it is written as
C3D8 with an :class:`~vertebrafe.io.export.ExportWarning` (in Abaqus, C3D8 uses selectively reduced
integration, which is close to but not verified against vertebrafe's B-bar).
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np

from .._version import __version__
from ..errors import InputError
from .atomic import atomic_path
from .provenance import check_replaceable
from .model_data import ExportWarning, describe, isotropic_constants, set_names

__all__ = ["write_inp", "ELEMENT_NAMES", "ANISO_ORDER", "INTEGRATION_POINTS"]

#: (meshio cell type, vertebrafe formulation) -> CalculiX/Abaqus element type.
ELEMENT_NAMES = {
    ("hexahedron", "full"): "C3D8", ("hexahedron", "incompatible"): "C3D8I", ("hexahedron", "bbar"): "C3D8",
    ("tetra", "full"): "C3D4", ("tetra", "bbar"): "C3D4",
    ("tetra10", "full"): "C3D10", ("tetra10", "bbar"): "C3D10",
}
#: Integration points of each element type (CalculiX 2.20), one ``*INITIAL CONDITIONS, TYPE=STRESS`` row each.
INTEGRATION_POINTS = {"C3D8": 8, "C3D8I": 8, "C3D4": 1, "C3D10": 4}
#: Formulations written without an exact counterpart (cell type, formulation).
INEXACT = {("hexahedron", "bbar")}

#: The 21 ``*ELASTIC, TYPE=ANISO`` constants D1111 ... D2323 as (row, column) of vertebrafe's Voigt
#: matrix (xx, yy, zz, xy, yz, xz): Abaqus index pairs 11, 22, 33, 12, 13, 23 -> 0, 1, 2, 3, 5, 4.
ANISO_ORDER = ((0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3), (3, 3),
               (0, 5), (1, 5), (2, 5), (3, 5), (5, 5), (0, 4), (1, 4), (2, 4), (3, 4), (5, 4), (4, 4))

_REAL = "%.12e"  # 13 significant digits in 20 characters, the field width CalculiX reads


def _table(rows, fmt):
    """Rows of a 2-D array as text lines with ``fmt`` (one format per column), comma separated."""
    buf = io.StringIO()
    if len(rows):
        np.savetxt(buf, rows, fmt=fmt, delimiter=", ")
    return buf.getvalue()


def _id_list(ids, per_line=16):
    """1-based ids ``(k,)`` as lines of at most ``per_line`` entries (the Abaqus limit for set data)."""
    ids = np.asarray(ids, dtype=np.int64)
    full = ids.size // per_line * per_line
    text = _table(ids[:full].reshape(-1, per_line), "%d") if full else ""
    if ids.size > full:
        text += ", ".join(str(int(i)) for i in ids[full:]) + "\n"
    return text


def _upper(names):
    """Set identifiers in upper case, as CalculiX and Abaqus read them (unique regardless of case)."""
    return {k: v.upper() for k, v in names.items()}


def _element_names(data):
    names = np.empty(data.cells.shape[0], dtype=object)
    for form in np.unique(data.formulation):
        key = (data.cell_type, str(form))
        if key not in ELEMENT_NAMES:
            raise InputError(f"cell type {data.cell_type!r} with formulation {form!r} has no CalculiX/Abaqus "
                             f"element; exportable: {sorted(ELEMENT_NAMES)}")
        if key in INEXACT:
            warnings.warn(f"{int(np.sum(data.formulation == form))} cell(s) use formulation {form!r}, which "
                          f"CalculiX has no exact counterpart for; they are written as {ELEMENT_NAMES[key]} "
                          f"(full integration in CalculiX, selectively reduced in Abaqus), so results differ "
                          f"from vertebrafe's; solve with formulation='full' or 'incompatible' to compare "
                          f"exactly", ExportWarning, stacklevel=4)
        names[data.formulation == form] = ELEMENT_NAMES[key]
    return names


def _initial_stress(stress, etype):
    """``*INITIAL CONDITIONS, TYPE=STRESS`` lines of the cells with a non-zero initial stress ``(m, 6)`` (Voigt
    xx, yy, zz, xy, yz, xz): element, integration point, S11, S22, S33, S12, S13, S23 (the last two swapped),
    one row per integration point of the cell's element type (:data:`INTEGRATION_POINTS`)."""
    cells = np.flatnonzero(np.any(stress != 0.0, axis=1))
    kinds, inverse = np.unique(etype[cells].astype(str), return_inverse=True)
    nip = np.array([INTEGRATION_POINTS[k] for k in kinds], dtype=np.int64)[inverse.ravel()]
    rows = np.repeat(cells, nip)
    point = np.arange(rows.size) - np.repeat(np.cumsum(nip) - nip, nip) + 1
    s = stress[rows][:, [0, 1, 2, 3, 5, 4]]
    return ("** initial stress of the cells (a nucleus swelling pressure): the stress is C eps + S0\n"
            "*INITIAL CONDITIONS, TYPE=STRESS\n"
            + _table(np.column_stack([rows + 1, point, s]), ["%d", "%d"] + [_REAL] * 6))


def _equations(plate, ref, rot, points):
    """``*EQUATION`` lines tying the plate's nodes to its reference (translation) and rotation nodes."""
    lines = []
    r = points[plate.nodes] - plate.center
    # u_d - t_d - (theta x r)_d = 0, (theta x r) = (ty rz - tz ry, tz rx - tx rz, tx ry - ty rx): for
    # component d, rotation DOF a has coefficient -r[b] and rotation DOF c has +r[e]; zero terms are dropped
    spec = {0: ((1, 2), (2, 1)), 1: ((2, 0), (0, 2)), 2: ((0, 1), (1, 0))}
    for node, rr in zip(plate.nodes + 1, r):
        for d in range(3):
            (a, b), (c, e) = spec[d]
            terms = [(node, d + 1, 1.0), (ref, d + 1, -1.0), (rot, a + 1, -rr[b]), (rot, c + 1, rr[e])]
            terms = [t for t in terms if t[2] != 0.0]
            lines.append(f"{len(terms)}\n" + ", ".join(f"{n}, {k}, {_REAL % v}" for n, k, v in terms))
    return "\n".join(lines) + "\n"


def _spring_ends(spring_set, points, first_node):
    """Node ids (1-based) of both ends of every spring, new nodes for interpolated ends.

    Returns ``(ends (k, 2), new_points (e, 3), equations text)``: an end on one node (weight 1) is that
    node; an interpolated end ``sum_j w_j u_j`` becomes a new node at ``sum_j w_j x_j`` tied by three
    ``*EQUATION`` constraints ``u_end - sum_j w_j u_j = 0`` (four terms per line)."""
    ends = np.zeros((spring_set.size, 2), np.int64)
    new_points, lines = [], []
    nid = first_node
    for col, (nodes, weights) in enumerate(((spring_set.nodes_a, spring_set.weights_a),
                                            (spring_set.nodes_b, spring_set.weights_b))):
        single = (weights.shape[1] == 1)
        if single:
            ends[:, col] = nodes[:, 0] + 1
            continue
        for i in range(spring_set.size):
            keep = weights[i] != 0.0
            ends[i, col] = nid
            new_points.append(weights[i] @ points[nodes[i]])
            for d in range(1, 4):
                terms = [(nid, d, 1.0)] + [(int(a) + 1, d, -float(w)) for a, w in zip(nodes[i][keep], weights[i][keep])]
                text = ",\n".join(", ".join(f"{t[0]}, {t[1]}, {_REAL % t[2]}" for t in terms[j:j + 4])
                                  for j in range(0, len(terms), 4))
                lines.append(f"{len(terms)}\n{text}\n")
            nid += 1
    return ends, np.array(new_points).reshape(-1, 3), "".join(lines)


def _elongation_nodes(spring_set, points, first_node):
    """For springs whose line of action is not the line between their ends (coincident ends, an explicit
    direction): one extra node per spring whose DOF 1 is the spring's elongation ``n . (u_b - u_a)``, tied
    by one ``*EQUATION`` over the nodes that both ends interpolate (four terms per line), and one fixed
    ground node 1 mm before them along x. A ``SPRINGA`` element from the ground node to the elongation node
    lies along x, and with the elongation node's DOFs 2 and 3 fixed its elongation is exactly that DOF 1,
    in a geometrically nonlinear step too, so the spring's force law carries over unchanged.
    Returns ``(ends (k, 2) as (ground, elongation node), new_points (k + 1, 3), equations text)``."""
    lines = []
    for i in range(spring_set.size):
        coef = {}
        for nodes, weights, sign in ((spring_set.nodes_b[i], spring_set.weights_b[i], -1.0),
                                     (spring_set.nodes_a[i], spring_set.weights_a[i], 1.0)):
            for a, wa in zip(nodes, weights):
                for d in range(3):
                    key = (int(a) + 1, d + 1)
                    coef[key] = coef.get(key, 0.0) + sign * wa * spring_set.direction[i, d]
        terms = [(first_node + i, 1, 1.0)] + [(a, d, c) for (a, d), c in coef.items() if c != 0.0]
        text = ",\n".join(", ".join(f"{t[0]}, {t[1]}, {_REAL % t[2]}" for t in terms[j:j + 4])
                          for j in range(0, len(terms), 4))
        lines.append(f"{len(terms)}\n{text}\n")
    k = spring_set.size
    ground = np.einsum("kp,kpi->ki", spring_set.weights_a, points[spring_set.nodes_a]).mean(axis=0)
    ends = np.column_stack([np.full(k, first_node + k), first_node + np.arange(k)])
    return ends, np.vstack([np.repeat((ground + [1.0, 0.0, 0.0])[None], k, axis=0), ground]), "".join(lines)


def _spring_table(kind, k, onset, length):
    """``*SPRING`` data: the stiffness (N/mm) of a linear spring, or the force-elongation pairs (N, mm) of a
    one-sided one, zero on the slack side of ``onset`` and ``k (delta - onset)`` on the other, tabulated
    over one spring length on each side."""
    if kind == "linear":
        return f"{_REAL % k}\n"
    span = max(float(length), 1.0)
    if kind == "tension":
        rows = [(0.0, onset - span), (0.0, onset), (k * span, onset + span)]
    else:
        rows = [(-k * span, onset - span), (0.0, onset), (0.0, onset + span)]
    return "".join(f"{_REAL % f}, {_REAL % e}\n" for f, e in rows)


def write_inp(model, path, *, heading=None, overwrite=False, print_nodes=None, field_output=True):
    """Write ``model`` as a CalculiX/Abaqus input deck at ``path`` (``.inp``); returns ``path``.

    ``heading``: text of ``*HEADING`` (default: vertebrafe version and model size). The file is written
    to a temporary name and moved into place; an existing ``path`` is replaced only with
    ``overwrite=True`` and only if vertebrafe wrote it (:mod:`vertebrafe.io.provenance`). Solve with
    ``ccx -i NAME`` (NAME without ``.inp``); ``NAME.dat`` then lists U and
    RF of every node (the plate nodes after the mesh nodes: reference, rotation, per plate), or only of
    the mesh node set named ``print_nodes``. ``field_output=False`` leaves out the ``.frd`` requests
    (``*NODE FILE``, ``*EL FILE``).
    """
    path = os.fspath(path)
    check_replaceable(path, overwrite)
    data = describe(model)
    if print_nodes is not None and print_nodes not in data.node_sets:
        raise InputError(f"print_nodes = {print_nodes!r}; allowed: None (all nodes) or a node set of the mesh: "
                         f"{sorted(data.node_sets)}")
    n, m = data.points.shape[0], data.cells.shape[0]
    npl = len(data.plates)
    etype = _element_names(data)
    # springs: SPRINGA elements after the cells, interpolated ends as extra nodes after the plate nodes;
    # springs acting off the line between their ends: on an elongation node each (_elongation_nodes)
    springs, first = [], n + 2 * npl + 1
    for ss in data.springs:
        start = first
        line = (np.einsum("kp,kpi->ki", ss.weights_b, data.points[ss.nodes_b])
                - np.einsum("kp,kpi->ki", ss.weights_a, data.points[ss.nodes_a]))
        length = np.linalg.norm(line, axis=1)
        off = np.linalg.norm(line / np.maximum(length, 1e-300)[:, None] - ss.direction, axis=1)
        if np.any(length <= 1e-9 * max(1.0, np.abs(data.points).max())) or np.any(off > 1e-6):
            ends, extra, equations = _elongation_nodes(ss, data.points, start)
            directional = True
        else:
            directional = False
            ends, extra, equations = _spring_ends(ss, data.points, start)
        first += len(extra)
        springs.append((ss, extra, ends, equations, start, directional))
    one_sided = [ss.name for ss in data.springs if ss.kind != "linear"]
    if one_sided:
        warnings.warn(f"spring set(s) {one_sided} are one-sided: CalculiX evaluates nonlinear springs only in a "
                      f"geometrically nonlinear step, so the step is written with NLGEOM (finite strain "
                      f"for the cells too); results agree with vertebrafe's small-strain active-set solution "
                      f"only to the order of the strains", ExportWarning, stacklevel=3)
    out = []
    w = out.append
    w("*HEADING\n" + (heading or f"vertebrafe {__version__}: {m} cells, {n} nodes, {npl} rigid plate(s); "
                      "units mm, N, MPa") + "\n")
    w("** written by vertebrafe; node i of the model is node i + 1 here, cell j is element j + 1\n")
    # nodes: the mesh, then per plate a reference node and a rotation node at its centre
    w("*NODE, NSET=NALL\n")
    w(_table(np.column_stack([np.arange(1, n + 1), data.points]), ["%d", _REAL, _REAL, _REAL]))
    for k, p in enumerate(data.plates):
        for node in (n + 2 * k + 1, n + 2 * k + 2):
            w(f"{node}, " + ", ".join(_REAL % c for c in p.center) + "\n")
    for _, extra, _, _, start, _ in springs:
        if len(extra):
            w("*NODE, NSET=NALL\n")
            w(_table(np.column_stack([np.arange(start, start + len(extra)), extra]), ["%d", _REAL, _REAL, _REAL]))
    # elements, one block per type
    conn = np.column_stack([np.arange(1, m + 1), data.cells + 1])
    for name in sorted(set(etype)):
        sel = etype == name
        w(f"*ELEMENT, TYPE={name}, ELSET=EALL\n")
        w(_table(conn[sel], "%d"))
    spring_sets, eid = [], m + 1
    names = _upper(set_names([ss.name for ss in data.springs], prefix="SPRINGS_"))
    for ss, _, ends, _, _, directional in springs:
        groups, inverse = np.unique(np.column_stack([ss.stiffness, ss.onset]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        for g, (k, onset) in enumerate(groups):
            sel = np.flatnonzero(inverse == g)
            elset = f"{names[ss.name]}_{g + 1}"
            w(f"** spring set {ss.name} ({ss.kind}), {sel.size} spring(s) of {_REAL % k} N/mm, onset {_REAL % onset} mm\n")
            w(f"*ELEMENT, TYPE=SPRINGA, ELSET={elset}\n")
            w(_table(np.column_stack([eid + np.arange(sel.size), ends[sel]]), "%d"))
            eid += sel.size
            spring_sets.append((elset, ss.kind, k, onset, float(ss.length[sel].max())))
    # sets from the mesh
    esets = _upper(set_names(data.cell_sets, reserved=["EALL"] + [f"EMAT{k + 1}" for k in range(len(data.materials))]))
    for key, ident in esets.items():
        w(f"** ELSET {ident}: cells tagged {key}\n*ELSET, ELSET={ident}\n")
        w(_id_list(data.cell_sets[key] + 1))
    reserved = ["NALL"] + [f"PLATE{k + 1}_{s}" for k in range(npl) for s in ("NODES", "REF", "ROT")]
    nsets = _upper(set_names(data.node_sets, reserved=reserved))
    for key, ident in nsets.items():
        w(f"** NSET {ident}: node set {key}\n*NSET, NSET={ident}\n")
        w(_id_list(data.node_sets[key] + 1))
    for k, p in enumerate(data.plates):
        w(f"** rigid plate {k}: tied nodes, reference node (translation) and rotation node (rotation, rad)\n")
        w(f"*NSET, NSET=PLATE{k + 1}_NODES\n" + _id_list(p.nodes + 1))
        w(f"*NSET, NSET=PLATE{k + 1}_REF\n{n + 2 * k + 1}\n*NSET, NSET=PLATE{k + 1}_ROT\n{n + 2 * k + 2}\n")
    # materials and sections
    for k, C in enumerate(data.materials):
        cells = np.flatnonzero(data.material == k)
        if cells.size == 0:
            continue
        w(f"*ELSET, ELSET=EMAT{k + 1}\n" + _id_list(cells + 1))
        w(f"*MATERIAL, NAME=M{k + 1}\n")
        iso = isotropic_constants(C)
        if iso is not None:
            w("*ELASTIC\n" + f"{_REAL % iso[0]}, {_REAL % iso[1]}\n")
        else:
            d = [C[i, j] for i, j in ANISO_ORDER]
            w("*ELASTIC, TYPE=ANISO\n" + "".join(", ".join(_REAL % v for v in d[s:s + 8]) + "\n"
                                               for s in range(0, 21, 8)))
        w(f"*SOLID SECTION, ELSET=EMAT{k + 1}, MATERIAL=M{k + 1}\n")
    for elset, kind, k, onset, length in spring_sets:
        w(f"*SPRING, ELSET={elset}" + ("" if kind == "linear" else ", NONLINEAR") + "\n\n")
        w(_spring_table(kind, k, onset, length))
    for ss, _, _, equations, _, _ in springs:
        if equations:
            w(f"** interpolated ends of spring set {ss.name}\n*EQUATION\n" + equations)
    # rigid plates
    for k, p in enumerate(data.plates):
        w(f"** rigid plate {k}: u_i = t + theta x (x_i - c), c = {p.center.tolist()} mm\n*EQUATION\n")
        w(_equations(p, n + 2 * k + 1, n + 2 * k + 2, data.points))
    if data.initial_stress is not None:
        w(_initial_stress(data.initial_stress, etype))
    # the step
    w("*STEP" + (", NLGEOM" if one_sided else "") + "\n*STATIC\n")
    i, d = np.nonzero(data.fixed)
    bc = [np.column_stack([i + 1, d + 1, d + 1, data.fixed_value[i, d]])]
    for k, p in enumerate(data.plates):
        dofs = np.flatnonzero(p.prescribed)
        nodes = np.where(dofs < 3, n + 2 * k + 1, n + 2 * k + 2)
        bc.append(np.column_stack([nodes, dofs % 3 + 1, dofs % 3 + 1, p.values[dofs]]))
    for _, _, ends, _, _, directional in springs:
        if directional:                              # elongation nodes: only DOF 1 in use; ground node fixed
            bc.append(np.column_stack([ends[:, 1], np.full(len(ends), 2), np.full(len(ends), 3), np.zeros(len(ends))]))
            bc.append(np.array([[ends[0, 0], 1, 3, 0.0]]))
    bc = np.concatenate(bc)
    if len(bc):
        w("*BOUNDARY\n" + _table(bc, ["%d", "%d", "%d", _REAL]))
    i, d = np.nonzero(data.force)
    loads = [np.column_stack([i + 1, d + 1, data.force[i, d]])]
    for k, p in enumerate(data.plates):
        dofs = np.flatnonzero(p.load)
        nodes = np.where(dofs < 3, n + 2 * k + 1, n + 2 * k + 2)
        loads.append(np.column_stack([nodes, dofs % 3 + 1, p.load[dofs]]))
    loads = np.concatenate(loads)
    if len(loads):
        w("*CLOAD\n" + _table(loads, ["%d", "%d", _REAL]))
    printed = "NALL" if print_nodes is None else nsets[print_nodes]
    w(f"*NODE PRINT, NSET={printed}\nU\n*NODE PRINT, NSET={printed}\nRF\n")
    if field_output:
        w("*NODE FILE\nU, RF\n*EL FILE\nS, E\n")
    w("*END STEP\n")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.writelines(out)
    return path


_DAT_BLOCKS = {"displacements": "U", "forces": "RF"}


def read_dat(path):
    """Nodal results of a CalculiX ``.dat`` file written by a deck of :func:`write_inp`.

    Returns ``{"U": (N, 3), "RF": (N, 3)}`` (mm, N; rows by node id - 1, so row i is vertebrafe node i and
    the plate nodes follow) for the last time printed. Raises InputError if the file has no such blocks.
    """
    path = os.fspath(path)
    blocks, current, rows = {}, None, []

    def close():
        if current is not None and rows:
            table = np.array(rows)
            ids = table[:, 0].astype(np.int64)
            values = np.zeros((ids.max(), 3))
            values[ids - 1] = table[:, 1:4]
            blocks[current] = values

    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] in _DAT_BLOCKS and "set" in words:
                close()
                current, rows = _DAT_BLOCKS[words[0]], []
            elif words[0].isalpha():
                close()
                current, rows = None, []
            elif current is not None and len(words) == 4:
                rows.append([float(x) for x in words])
    close()
    if not blocks:
        raise InputError(f"{path!r} has no nodal displacement or force blocks; was it written by ccx from a "
                         f"deck of vertebrafe.io.abaqus.write_inp?")
    return blocks
