"""Non-English alt text for concept images (French, German, Spanish, Chinese).

Real crawls are multilingual; CLIP's WIT kept English only. Some of these sentences still
contain allowlist words ("triangle" is French too), so only language ID can drop them.
"""

from __future__ import annotations

import random

from wit_pipeline.synthetic.concepts import Concept

LANGS = ("fr", "de", "es", "zh")

_COLOURS = {
    "fr": {"red": "rouge", "green": "vert", "blue": "bleu", "yellow": "jaune", "orange": "orange",
           "purple": "violet", "black": "noir", "white": "blanc"},
    "de": {"red": "Rot", "green": "Grün", "blue": "Blau", "yellow": "Gelb", "orange": "Orange",
           "purple": "Lila", "black": "Schwarz", "white": "Weiß"},
    "es": {"red": "rojo", "green": "verde", "blue": "azul", "yellow": "amarillo", "orange": "naranja",
           "purple": "morado", "black": "negro", "white": "blanco"},
    "zh": {"red": "红", "green": "绿", "blue": "蓝", "yellow": "黄", "orange": "橙",
           "purple": "紫", "black": "黑", "white": "白"},
}
_SHAPES = {
    "fr": {"circle": "un cercle", "square": "un carré", "triangle": "un triangle", "star": "une étoile",
           "cross": "une croix", "ring": "un anneau"},
    "de": {"circle": "einen Kreis", "square": "ein Quadrat", "triangle": "ein Dreieck", "star": "einen Stern",
           "cross": "ein Kreuz", "ring": "einen Ring"},
    "es": {"circle": "un círculo", "square": "un cuadrado", "triangle": "un triángulo", "star": "una estrella",
           "cross": "una cruz", "ring": "un anillo"},
    "zh": {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "cross": "十字", "ring": "圆环"},
}
_TEMPLATES = {
    "fr": ("Une belle photo montrant {shape} de couleur {colour}, prise dans notre atelier cet été.",
           "Sur cette image on voit {shape} de couleur {colour} devant un fond gris."),
    "de": ("Auf diesem schönen Bild sieht man {shape} in der Farbe {colour}, aufgenommen in unserer Werkstatt.",
           "Das Foto zeigt {shape} in {colour} vor einem grauen Hintergrund."),
    "es": ("Una bonita fotografía que muestra {shape} de color {colour}, tomada en nuestro taller este verano.",
           "En esta imagen se ve {shape} de color {colour} sobre un fondo gris."),
    "zh": ("这是一张在我们工作室拍摄的{colour}色{shape}的漂亮照片。", "图片上是灰色背景前的一个{colour}色{shape}。"),
}


def foreign_caption(concept: Concept, lang: str, rng: random.Random) -> str:
    """A sentence in `lang` describing `concept`."""
    template = rng.choice(_TEMPLATES[lang])
    return template.format(shape=_SHAPES[lang][concept.shape], colour=_COLOURS[lang][concept.colour])
