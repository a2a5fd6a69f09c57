"""The words a user may write for each word of avgen-synth's captions (``captions``), read by ``rewrite``.

Keys are lower-case words or phrases of up to three words (hyphens read as spaces: "light-blue" is
"light blue"); values are the caption words they stand for. Every value is a word of the caption grammar,
and a word that could stand for two things names both (``COLOURS``: the object colour and the backdrop;
"gentle" is a slow pace and light rain): the family of the prompt decides which one counts.
"""

from __future__ import annotations

# The thing each family shows, as its caption names it ("face", "ball" / "balls", "bars", "rain").
OBJECTS: dict[str, dict[str, str]] = {
    "talk": {
        w: "face"
        for w in (
            *("face", "faces", "head", "heads", "person", "people", "character", "characters", "mouth"),
            *("man", "woman", "guy", "girl", "boy", "kid", "child", "avatar", "emoji", "smiley"),
            *("speaker", "talking head", "cartoon face"),
        )
    },
    "bounce": {
        **{w: "ball" for w in ("ball", "sphere", "orb", "bouncy ball", "bouncing ball", "rubber ball")},
        **{
            w: "balls" for w in ("balls", "spheres", "orbs", "bouncy balls", "bouncing balls", "rubber balls")
        },
    },
    "keys": {
        w: "bars"
        for w in (
            *("bars", "bar", "keys", "key", "piano keys", "piano key", "xylophone", "xylophones"),
            *("marimba", "glockenspiel", "vibraphone", "piano", "keyboard", "metallophone"),
            *("xylophone bars", "xylophone keys", "chimes"),
        )
    },
    "ambience": {
        w: "rain"
        for w in (
            *("rain", "rains", "raining", "rained", "rainfall", "rainy", "rainwater", "raindrops"),
            *("raindrop", "rain drops", "drizzle", "drizzling", "drizzles", "downpour", "storm"),
            *("rainstorm", "thunderstorm", "thunderstorms", "storms", "shower", "showers", "deluge"),
            *("cloudburst", "pouring rain", "torrent", "sprinkle", "sprinkling"),
        )
    },
}

# Other words that say which family a prompt is about, as the caption says them.
TOPICS: dict[str, dict[str, str]] = {
    "talk": {
        w: "says"
        for w in (
            *("say", "says", "saying", "said", "speak", "speaks", "speaking", "spoke", "talk", "talks"),
            *("talking", "talked", "tell", "tells", "telling", "told", "utter", "utters", "uttering"),
            *("whisper", "whispers", "whispering", "shout", "shouts", "shouting", "yell", "yells"),
            *("asks", "asking", "greets", "greeting", "announces", "speech", "voice", "lip sync"),
            *("lip syncing", "lip syncs"),
        )
    },
    "bounce": {
        w: "bounce"
        for w in (
            *("bounce", "bounces", "bouncing", "bounced", "bouncy", "drop", "drops", "dropping"),
            *("dropped", "fall", "falls", "falling", "fell", "hop", "hops", "hopping", "jump", "jumps"),
            *("jumping", "rebound", "rebounds", "rebounding"),
        )
    },
    "keys": {
        **{
            w: "play"
            for w in ("play", "plays", "playing", "played", "chime", "chiming", "tinkle", "tinkling")
        },
        **{
            w: "melody"
            for w in (
                *("melody", "melodies", "tune", "tunes", "notes", "note", "song", "songs", "music"),
                *("jingle", "scale", "arpeggio", "riff", "ditty"),
            )
        },
    },
    "ambience": {
        w: "falls" for w in ("fall", "falls", "falling", "fell", "pours", "pour", "pouring", "patters")
    },
}

# Rain strength that a name of the rain implies, when no strength word is given.
RAIN_NOUN_STRENGTH: dict[str, str] = {
    **{w: "light" for w in ("drizzle", "drizzling", "drizzles", "sprinkle", "sprinkling")},
    **{
        w: "heavy"
        for w in (
            *("downpour", "storm", "storms", "rainstorm", "thunderstorm", "thunderstorms", "deluge"),
            *("cloudburst", "pouring rain", "torrent"),
        )
    },
}

# colour word -> (object colour of ``captions.COLORS`` or None, backdrop of ``captions.BACKGROUNDS`` or None)
COLOURS: dict[str, tuple[str | None, str | None]] = {
    **{w: ("red", None) for w in ("red", "crimson", "scarlet", "cherry", "ruby", "vermilion")},
    "maroon": ("red", "brown"),
    **{w: ("orange", None) for w in ("orange", "tangerine", "amber", "coral", "peach", "apricot")},
    **{w: ("yellow", None) for w in ("yellow", "gold", "golden", "lemon", "mustard")},
    **{w: ("green", None) for w in ("green", "lime", "emerald", "mint", "light green", "bright green")},
    **{w: ("green", "dark green") for w in ("dark green", "forest green", "olive", "teal", "pine green")},
    "blue": ("blue", "dark blue"),
    **{
        w: ("blue", "dark blue")
        for w in ("dark blue", "navy", "navy blue", "midnight blue", "cobalt", "sapphire", "royal blue")
    },
    **{
        w: ("blue", "light blue")
        for w in (
            *("light blue", "sky blue", "baby blue", "pale blue", "cyan", "turquoise", "aqua", "azure"),
            "powder blue",
        )
    },
    **{w: ("purple", None) for w in ("purple", "violet", "lilac", "lavender", "mauve", "plum", "indigo")},
    **{w: ("pink", None) for w in ("pink", "magenta", "fuchsia", "rose", "salmon", "hot pink")},
    "white": ("white", "cream"),
    **{w: ("white", "cream") for w in ("ivory", "snow white", "off white", "pearl")},
    **{w: (None, "grey") for w in ("grey", "gray", "silver", "charcoal", "slate", "dark grey", "dark gray")},
    **{w: (None, "grey") for w in ("light grey", "light gray", "ash")},
    **{w: (None, "black") for w in ("black", "dark", "jet black", "pitch black", "night", "nighttime")},
    **{w: (None, "brown") for w in ("brown", "tan", "chocolate", "wooden", "wood", "dark brown")},
    **{w: (None, "cream") for w in ("cream", "beige", "sand", "sandy", "khaki", "eggshell")},
}

SIZES: dict[str, str] = {
    **{w: "small" for w in ("small", "tiny", "little", "smaller", "smallest", "mini", "miniature", "wee")},
    **{
        w: "medium"
        for w in ("medium", "medium sized", "mid sized", "midsize", "average", "normal", "regular")
    },
    **{
        w: "big"
        for w in (
            *("big", "large", "huge", "giant", "enormous", "massive", "bigger", "biggest", "larger"),
            *("largest", "gigantic", "jumbo"),
        )
    },
}
SHAPES: dict[str, str] = {
    **{w: "round" for w in ("round", "circular", "circle", "rounded", "round shaped")},
    **{w: "square" for w in ("square", "squared", "boxy", "blocky", "square shaped", "rectangular")},
    **{w: "oval" for w in ("oval", "elliptical", "ellipse", "egg shaped", "oblong", "ovoid", "oval shaped")},
}
# Pace as keys captions say it ("a slow melody"); bounce captions say it as an adverb (``bounce.ADVERB``).
PACES: dict[str, str] = {
    **{
        w: "slow"
        for w in (
            *("slow", "slowly", "gently", "gentle", "lazily", "lazy", "leisurely", "calm", "calmly"),
            *("relaxed", "unhurried", "sluggish", "sluggishly", "slower", "slow motion"),
        )
    },
    **{
        w: "quick"
        for w in (
            *("quick", "quickly", "fast", "rapid", "rapidly", "swift", "swiftly", "speedy", "briskly"),
            *("brisk", "lively", "upbeat", "energetic", "energetically", "hurriedly", "faster"),
            *("fast paced", "speedily", "quicker"),
        )
    },
}
STRENGTHS: dict[str, str] = {
    **{w: "light" for w in ("light", "gentle", "soft", "fine", "thin", "slight", "weak", "lightly")},
    **{w: "steady" for w in ("steady", "moderate", "medium", "constant", "steadily", "continuous")},
    **{
        w: "heavy"
        for w in ("heavy", "hard", "strong", "torrential", "pouring", "heavily", "intense", "lashing")
    },
}
COUNTS: dict[str, int] = {
    **{w: i for i, w in enumerate(("one", "two", "three", "four", "five", "six", "seven", "eight"), 1)},
    **{"nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "single": 1, "pair": 2, "couple": 2},
    **{"trio": 3, "dozen": 12},
}

# Where things are: a backdrop phrase is a preposition, a colour and one of these ("on a blue floor").
SETTINGS = frozenset(
    ("background", "backdrop", "backgrounds", "floor", "ground", "wall", "surface", "screen", "sky", "canvas")
)
# Prepositions that start a backdrop phrase even without a setting word ("on black").
PREPOSITIONS = frozenset(
    ("on", "onto", "into", "against", "over", "behind", "before", "upon", "atop", "in front of")
)
# Words that start a backdrop phrase only when a setting word follows ("with a black background").
SOFT_PREPOSITIONS = frozenset(("with", "in", "at", "under", "across"))
DETERMINERS = frozenset(("a", "an", "the", "some", "its", "their", "his", "her", "plain", "solid"))
# Words that carry no meaning the caption could lose.
FILLERS = frozenset(
    """of and or to is are was were be being been it it's that this these those which who while as by from up
    down around about again repeatedly very really so then just also has have having show shows showing
    shown video clip scene animation cartoon animated image picture footage shot there here out loud loudly
    aloud colored coloured color colour sized size shaped shape back forth along together each other them
    they we can see hear you something thing things gets get s words word phrase line continuously softly
    audio sound sounds sfx with in at under across for like made""".split()
)
