"""Off-screen rendering: the pyvista import gate, the render window choice without a display, and the
cached test of whether rendering works here."""
from __future__ import annotations

import ctypes.util
import os
import sys

from ..errors import InputError

__all__ = ["no_display", "import_pyvista", "offscreen_backend", "offscreen_available"]


def no_display():
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get(
        "WAYLAND_DISPLAY")


def _select_offscreen_window():
    """On a Linux machine without a display, let VTK use EGL directly (if found) instead of trying X first."""
    if no_display() and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ:
        if ctypes.util.find_library("EGL"):
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkEGLRenderWindow"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"


def import_pyvista():
    """Import pyvista (the ``viz`` extra) with a helpful error."""
    try:
        import pyvista
    except ImportError as exc:  # pragma: no cover - pyvista is a dev dependency
        raise InputError("vertebrafe.viz needs pyvista: pip install 'vertebrafe[viz]'") from exc
    _select_offscreen_window()
    return pyvista


def offscreen_backend():
    """The VTK render window class used off-screen here, e.g. ``'vtkEGLRenderWindow'`` (renders a test)."""
    pv = import_pyvista()
    p = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        p.add_mesh(pv.Cube())
        p.render()
        return p.ren_win.GetClassName()
    finally:
        p.close()



# ------------------------------------------------------------------------------------------ report figures
_OFFSCREEN = None


def offscreen_available(timeout=120.0):
    """Whether off-screen rendering works here: ``(True, render window class)`` or ``(False, reason)``.

    The test renders in a child process, because VTK without an EGL or OSMesa driver may abort the
    process instead of raising; the answer is cached for the life of this process. ``timeout`` in s.
    """
    global _OFFSCREEN
    if _OFFSCREEN is not None:
        return _OFFSCREEN
    try:
        import pyvista  # noqa: F401
    except ImportError:
        _OFFSCREEN = (False, "pyvista is not installed (pip install 'vertebrafe[viz]')")
        return _OFFSCREEN
    import subprocess

    code = "from vertebrafe import viz; print(viz.offscreen_backend())"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError) as exc:
        _OFFSCREEN = (False, f"the rendering test did not finish ({type(exc).__name__})")
        return _OFFSCREEN
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines and "RenderWindow" in lines[-1]:
        _OFFSCREEN = (True, lines[-1].strip())
    else:
        why = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        _OFFSCREEN = (False, f"the rendering test failed (exit status {proc.returncode}"
                             + (f": {why[-1][:200]}" if why else "") + "); install an EGL or OSMesa driver "
                             "(Debian/Ubuntu: libegl1 libegl-mesa0 libgl1-mesa-dri, or libosmesa6)")
    return _OFFSCREEN

