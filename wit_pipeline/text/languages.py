"""Which allowlist a text is matched against: fastText LID labels -> Wikipedia language codes.

A worldwide allowlist is one list per Wikipedia language (`<code>.tsv`, the code as in
`<code>.wikipedia.org`, `_` for `-`: `zh_yue`, `be_tarask`). Language ID (fastText's lid.176)
names languages by its own labels, mostly the same codes. This table is MetaCLIP 2's
`lid_to_wiki` (released empty, "customize your LID lang set"), filled in for lid.176, with
variants folded as `align_lid_to_wiki.py` intends:

* a Wikipedia variant `<base>_<x>` folds into `<base>` when `<base>` is itself a Wikipedia
  language: `zh_yue`, `zh_classical`, `zh_min_nan` into `zh`, `be_tarask` into `be`, `nds_nl`
  into `nds`. (MetaCLIP's script folds every variant into its prefix, so `cbk_zam`, `roa_rup`,
  `map_bms`, `bat_smg`, `fiu_vro` land on prefixes that are no language and their lists are
  silently dropped; here those keep their own code.) `simple` (Simple English) folds into `en`:
  language ID cannot tell them apart.
* LID labels that differ from a Wikipedia code: `yue` (Cantonese) is `zh_yue`, so `zh`;
  `cbk` (Chavacano) is `cbk_zam`; `lrc` (Northern Luri) has no Wikipedia in the list: texts
  LID calls `lrc` have no allowlist.

A text is matched only against the folded list of its LID language (`lid_to_wiki`); a text
whose language has no list is a counted drop in the harvest, never matched against another.
"""

from __future__ import annotations

# The Wikipedia languages MetaCLIP 2 builds metadata for (its build_metadata.wiki_lang_code).
WIKI_CODES: frozenset[str] = frozenset("""
ab ace ady af als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az azb
ba ban bar bat_smg bbc bcl be be_tarask bew bg bh bi bjn blk bm bn bo bpy br bs bug bxr
ca cbk_zam cdo ce ceb ch chr chy ckb co cr crh cs csb cu cv cy
da dag de dga din diq dsb dtp dty dv dz ee el eml en eo es et eu ext
fa fat ff fi fiu_vro fj fo fon fr frp frr fur fy
ga gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv
ha hak haw he hi hif hr hsb ht hu hy hyw ia id ie ig igl ik ilo inh io is it iu ja jam jbo jv
ka kaa kab kbd kbp kcg kg ki kk kl km kn ko koi krc ks ksh ku kus kv kw ky
la lad lb lbe lez lfn lg li lij lld lmo ln lo lt ltg lv
mad mai map_bms mdf mg mhr mi min mk ml mn mni mnw mr mrj ms mt mwl my myv mzn
nah nap nds nds_nl ne new nia nl nn no nov nqo nrm nso nv ny oc olo om or os
pa pag pam pap pcd pcm pdc pfl pi pih pl pms pnb pnt ps pt pwn qu
rm rmy rn ro roa_rup roa_tara ru rue rw
sa sah sat sc scn sco sd se sg sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq su sv sw szl szy
ta tay tcy te tet tg th ti tk tl tly tn to tpi tr trv ts tt tum tw ty tyv
udm ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo za zea zgh zh zh_classical zh_min_nan zh_yue zu
""".split())

# The labels of fastText's lid.176 model (the default model, lid.176.ftz; lid.176.bin has the same).
LID176_LABELS: tuple[str, ...] = tuple("""
af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy
da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy
ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min
mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm
ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec
vep vi vls vo wa war wuu xal xmf yi yo yue zh
""".split())

_FOLDS = {"simple": "en"}  # variants whose base is not their prefix
_LID_ALIASES = {"yue": "zh_yue", "cbk": "cbk_zam"}  # LID label -> its Wikipedia code
_LABEL_PREFIX = "__label__"


def base_code(code: str) -> str:
    """The language a Wikipedia code's list is folded into (`zh_yue` -> `zh`, `en` -> `en`).

    Raises ValueError for a code that is not a Wikipedia language."""
    if code not in WIKI_CODES:
        raise ValueError(f"{code!r} is not a Wikipedia language code (e.g. en, de, zh, ja, zh_yue)")
    if code in _FOLDS:
        return _FOLDS[code]
    prefix = code.split("_", 1)[0]
    return prefix if prefix != code and prefix in WIKI_CODES else code


def lid_to_wiki(label: str) -> str | None:
    """The (folded) Wikipedia language of a LID label (`__label__yue` or `yue` -> `zh`), or
    None when no Wikipedia list can hold it (`lrc`, or a label unknown to the table)."""
    label = label.removeprefix(_LABEL_PREFIX)
    code = _LID_ALIASES.get(label, label)
    return base_code(code) if code in WIKI_CODES else None


# Every lid.176 label that has a Wikipedia language, and what it folds to.
LID176_TO_WIKI: dict[str, str] = {label: code for label in LID176_LABELS if (code := lid_to_wiki(label))}
# The folded languages language ID can name: a list for any other is never used.
REACHABLE: frozenset[str] = frozenset(LID176_TO_WIKI.values())

__all__ = ["LID176_LABELS", "LID176_TO_WIKI", "REACHABLE", "WIKI_CODES", "base_code", "lid_to_wiki"]
