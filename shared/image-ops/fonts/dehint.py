"""How fonts/DejaVuSans.ttf was made from DejaVu Sans 2.37 as distributed (759,720 bytes):

    python3 dehint.py DejaVuSans-2.37.ttf DejaVuSans.ttf     (needs fontTools)

It drops the TrueType hinting (the fpgm, prep and cvt tables and every glyph's instructions,
which ab_glyph never runs: it rasterises the outlines as they are) and the glyph names (post
format 3; nothing here looks glyphs up by name): 613,756 bytes, 146 KB less in every function
binary. Then it checks that what ab_glyph and ttf-parser do read is unchanged: every glyph's
outline points, contours and bounding box, composite glyphs' components, and the cmap, hmtx,
hhea, OS/2, kern, GPOS, GSUB, GDEF and name tables byte for byte."""
import io
import sys

from fontTools.ttLib import TTFont
src, dst = sys.argv[1], sys.argv[2]
f = TTFont(src, recalcBBoxes=False, recalcTimestamp=False)
for name in f.getGlyphOrder():
    g = f['glyf'][name]
    if hasattr(g, 'program'):
        g.program.fromBytecode(b'')
for t in ('fpgm', 'prep', 'cvt '):
    if t in f:
        del f[t]
f['post'].formatType = 3.0
m = f['maxp']
m.maxZones = 1
for a in ('maxTwilightPoints', 'maxStorage', 'maxFunctionDefs', 'maxInstructionDefs', 'maxStackElements', 'maxSizeOfInstructions'):
    setattr(m, a, 0)
b = io.BytesIO(); f.save(b, reorderTables=False); d = b.getvalue()
open(dst, 'wb').write(d)
a, n = TTFont(src), TTFont(io.BytesIO(d))
ga, gn = a['glyf'], n['glyf']
names, nnames = a.getGlyphOrder(), n.getGlyphOrder()
assert len(names) == len(nnames)
for i, name in enumerate(names):
    x, y = ga[name], gn[nnames[i]]
    for attr in ('numberOfContours', 'xMin', 'yMin', 'xMax', 'yMax'):
        assert getattr(x, attr, None) == getattr(y, attr, None), (name, attr)
    if x.isComposite():
        assert [(a.getGlyphID(c.glyphName), c.x, c.y, c.flags & ~0x0100, str(getattr(c, 'transform', None))) for c in x.components] == \
               [(n.getGlyphID(c.glyphName), c.x, c.y, c.flags & ~0x0100, str(getattr(c, 'transform', None))) for c in y.components], name
    elif x.numberOfContours > 0:
        assert list(x.coordinates) == list(y.coordinates), name
        assert list(x.endPtsOfContours) == list(y.endPtsOfContours), name
        assert [fl & 1 for fl in x.flags] == [fl & 1 for fl in y.flags], name
for t in ('GPOS', 'GSUB', 'GDEF', 'kern', 'hhea', 'OS/2', 'name', 'cmap', 'hmtx'):
    assert a.reader[t] == n.reader[t], t
print(len(open(src, 'rb').read()), '->', len(d))
