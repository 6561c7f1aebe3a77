"""Procedural generator of short, simple English stories (the tiny demo model's training corpus).

Every word, name and sentence pattern in this file was written for edgestream, so the corpus and
anything trained on it are ours to ship (Apache-2.0, like the rest of the project). The generator is
deterministic: `stories(n, seed)` always gives the same stories (Python's `random.Random` with an
integer seed is stable across versions). Training uses seed 1 and up, held-out evaluation uses
`HELDOUT_SEED`, which training never draws from.

Each story keeps its characters, their pronouns and the objects it introduced consistent, so a
model has to carry names and facts across sentences, not only learn local grammar.
"""

from __future__ import annotations

import random

HELDOUT_SEED = 987654321

GIRLS = ["Lily", "Mia", "Anna", "Zoe", "Emma", "Sara", "Lucy", "Ella", "Amy", "Nora", "Ruby", "Kate",
         "Jane", "Rosa", "Ivy", "Maya", "Lena", "Tess", "Alice", "Daisy"]
BOYS = ["Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Tim", "Noah", "Finn", "Joe", "Dan", "Owen",
        "Luke", "Alex", "Paul", "Hugo", "Theo", "Eli", "Oscar", "Jake"]
# (kind, pronoun set, sound verb, small adjective)
ANIMALS = [
    ("cat", "she", "purred"), ("dog", "he", "barked"), ("rabbit", "she", "hopped"),
    ("bear", "he", "growled"), ("bird", "she", "sang"), ("fox", "he", "yipped"),
    ("duck", "she", "quacked"), ("frog", "he", "croaked"), ("mouse", "she", "squeaked"),
    ("owl", "he", "hooted"), ("pig", "he", "oinked"), ("puppy", "he", "barked"),
    ("kitten", "she", "meowed"), ("squirrel", "she", "chattered"), ("turtle", "he", "smiled"),
]
ANIMAL_NAMES = ["Spot", "Fluffy", "Pip", "Coco", "Bella", "Buddy", "Milo", "Rosie", "Sunny", "Bubbles",
                "Pepper", "Muffin", "Ziggy", "Nutmeg", "Button"]
PRON = {
    "she": {"subj": "she", "obj": "her", "pos": "her", "Subj": "She", "Pos": "Her"},
    "he": {"subj": "he", "obj": "him", "pos": "his", "Subj": "He", "Pos": "His"},
}
TRAITS = ["little", "happy", "brave", "shy", "curious", "kind", "funny", "clever", "gentle", "cheerful",
          "busy", "sleepy", "friendly", "small", "quiet"]
PLACES = [
    ("park", "in the park", "to the park"), ("garden", "in the garden", "to the garden"),
    ("forest", "in the forest", "to the forest"), ("beach", "at the beach", "to the beach"),
    ("farm", "on the farm", "to the farm"), ("river", "by the river", "to the river"),
    ("hill", "on the hill", "to the hill"), ("town", "in the town", "to the town"),
    ("meadow", "in the meadow", "to the meadow"), ("lake", "by the lake", "to the lake"),
    ("school", "at school", "to school"), ("zoo", "at the zoo", "to the zoo"),
]
HOMES = ["a small house", "a big house", "a little blue house", "a house with a red door",
         "a cozy cottage", "a tall tower", "a tree house", "a warm burrow", "a nest in a tall tree",
         "a little hut"]
NEAR = ["near the forest", "by the sea", "on a quiet street", "next to a big park", "at the edge of the town",
        "near a little river", "on a sunny hill", "in a busy city", "far away in the woods"]
COLORS = ["red", "blue", "green", "yellow", "pink", "purple", "orange", "white", "black", "brown", "shiny"]
OBJECTS = ["ball", "kite", "hat", "box", "book", "toy car", "teddy bear", "doll", "boat", "drum",
           "balloon", "bike", "cup", "scarf", "shell", "rock", "spoon", "bucket", "truck", "train",
           "robot", "key", "ring", "bag", "blanket"]
FOODS = ["apple", "cake", "cookie", "sandwich", "banana", "pie", "carrot", "muffin", "orange", "pear"]
WEATHER_BAD = ["it started to rain", "a big wind came", "dark clouds filled the sky", "it began to snow",
               "the sky turned gray"]
FEELINGS_GOOD = ["happy", "glad", "proud", "excited", "thankful", "calm"]
FEELINGS_BAD = ["sad", "scared", "worried", "upset", "lonely", "tired"]
ACTIVITIES = ["play tag", "build a sand castle", "fly a kite", "read a book", "pick flowers",
              "jump in the leaves", "draw pictures", "sing songs", "look at the clouds", "play with a ball",
              "splash in the water", "climb trees", "have a picnic", "watch the birds", "dance"]
HIDING = ["under a big rock", "behind a tree", "in a bush", "under the bed", "near the pond",
          "in the tall grass", "under a pile of leaves", "behind the door", "inside a box", "on top of a hill"]
HELPERS = ["mom", "dad", "grandma", "grandpa", "teacher", "big sister", "big brother", "aunt", "uncle"]


class Character:
    def __init__(self, rng: random.Random, avoid: set[str] | None = None):
        avoid = avoid or set()
        r = rng.random()
        if r < 0.7:
            girl = rng.random() < 0.5
            pool = GIRLS if girl else BOYS
            self.name = rng.choice([n for n in pool if n not in avoid])
            self.kind = "girl" if girl else "boy"
            self.p = PRON["she" if girl else "he"]
            self.sound = "said"
            self.animal = False
        else:
            kind, pr, sound = rng.choice(ANIMALS)
            self.name = rng.choice([n for n in ANIMAL_NAMES if n not in avoid])
            self.kind = kind
            self.p = PRON[pr]
            self.sound = sound
            self.animal = True
        self.trait = rng.choice(TRAITS)


def a_an(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _intro(rng: random.Random, c: Character) -> list[str]:
    opener = rng.choice(["Once upon a time, there was", "One day, there was", "There once was",
                         "Once there was", "Long ago, there was"])
    s = [f"{opener} {a_an(c.trait)} {c.kind} named {c.name}."]
    s.append(f"{c.p['Subj']} lived in {rng.choice(HOMES)} {rng.choice(NEAR)}.")
    if rng.random() < 0.7:
        s.append(f"{c.name} loved to {rng.choice(ACTIVITIES)}.")
    return s


def _lost_and_found(rng, c, f, place):
    obj = f"{rng.choice(COLORS)} {rng.choice(OBJECTS)}"
    hide = rng.choice(HIDING)
    p = c.p
    s = [f"{c.name} had {a_an(obj)}. It was {p['pos']} favorite toy."]
    s.append(f"One day, {c.name} went {place[2]} with {p['pos']} {obj}.")
    s.append(f"{p['Subj']} played all day. But when it was time to go home, the {obj} was gone!")
    s.append(f"{c.name} felt {rng.choice(FEELINGS_BAD)}. \"Where is my {obj}?\" {p['subj']} cried.")
    s.append(f"Then {c.name} saw {f.name} the {f.kind}. \"I can help you look,\" {f.name} {f.sound}.")
    s.append(f"They looked {rng.choice(HIDING)}. It was not there. They looked {hide}.")
    s.append(f"\"I found it!\" {f.name} said. The {obj} was {hide}.")
    s.append(f"{c.name} hugged {p['pos']} {obj} and smiled. \"Thank you, {f.name}!\"")
    s.append(rng.choice([f"From that day on, {c.name} and {f.name} were best friends.",
                         f"{c.name} was very {rng.choice(FEELINGS_GOOD)}, and {p['subj']} never lost "
                         f"{p['pos']} {obj} again.",
                         f"They walked home together, and {c.name} held the {obj} tight."]))
    return s


def _sharing(rng, c, f, place):
    food = rng.choice(FOODS)
    p, fp = c.p, f.p
    s = [f"One sunny morning, {c.name} went {place[2]}. {p['Subj']} had a big {food} in {p['pos']} bag."]
    s.append(f"{place[1].capitalize()}, {p['subj']} met {f.name}. {f.name} was {a_an(f.trait)} {f.kind}.")
    s.append(f"{f.name} looked {rng.choice(FEELINGS_BAD)}. \"I am so hungry,\" {fp['subj']} said.")
    if rng.random() < 0.8:
        s.append(f"{c.name} thought for a moment. Then {p['subj']} broke the {food} in two.")
        s.append(f"\"Here, you can have half,\" {c.name} said. {f.name} smiled a big smile.")
        s.append(f"They ate the {food} together {place[1]}. It was the best {food} ever.")
        s.append(rng.choice([f"{c.name} learned that sharing makes everyone {rng.choice(FEELINGS_GOOD)}.",
                             f"After that, {c.name} and {f.name} played together every day.",
                             "Sharing made them both feel warm inside."]))
    else:
        s.append(f"But {c.name} did not want to share. {p['Subj']} ate the whole {food}.")
        s.append(f"Soon {c.name} had a tummy ache, and {f.name} was still hungry.")
        s.append(f"\"I am sorry, {f.name},\" {c.name} said. \"Next time I will share.\"")
        s.append(f"The next day, {c.name} brought two {food}s, one for {p['obj']} and one for {f.name}.")
    return s


def _helping(rng, c, f, place):
    p, fp = c.p, f.p
    trouble = rng.choice([
        ("was stuck in a tree", "climbed up slowly and helped", "down"),
        ("had hurt " + fp["pos"] + " leg", "made a soft bed of leaves for", "to rest"),
        ("could not find " + fp["pos"] + " way home", "walked with", "all the way home"),
        ("was stuck in the mud", "pulled and pulled to help", "out of the mud"),
        ("was cold and wet", "gave " + p["pos"] + " scarf to", "to keep warm"),
    ])
    s = [f"One day, {c.name} was walking {place[1]}. {p['Subj']} heard a small sound."]
    s.append(f"It was {f.name}, {a_an(f.trait)} {f.kind}. {f.name} {trouble[0]}.")
    s.append(f"\"Please help me,\" {f.name} said. {c.name} wanted to help.")
    s.append(f"{c.name} {trouble[1]} {f.name} {trouble[2]}.")
    s.append(f"\"Thank you!\" {f.name} {f.sound}. \"You are a good friend.\"")
    s.append(rng.choice([f"{c.name} felt {rng.choice(FEELINGS_GOOD)}. Helping others made {p['obj']} happy.",
                         f"From then on, {f.name} came to visit {c.name} every day.",
                         f"{c.name} went home and told {p['pos']} {rng.choice(HELPERS)} all about it."]))
    return s


def _weather(rng, c, f, place):
    act = rng.choice(ACTIVITIES)
    p = c.p
    bad = rng.choice(WEATHER_BAD)
    s = [f"One day, {c.name} and {p['pos']} friend {f.name} the {f.kind} wanted to {act} {place[1]}."]
    s.append(f"They went {place[2]} together. But then {bad}.")
    s.append(f"\"Oh no!\" said {f.name}. \"Now we cannot {act}.\"")
    s.append(f"{c.name} had an idea. \"Let us go to my house and play inside,\" {p['subj']} said.")
    s.append(rng.choice(["They built a fort out of pillows and blankets.",
                         "They drew pictures of the sun and the sky.",
                         f"They ate warm soup that {c.name}'s {rng.choice(HELPERS)} made.",
                         "They played a game with cards and told funny stories."]))
    s.append(f"Soon the sun came out again. They ran back {place[2]} and went to {act}.")
    s.append(rng.choice(["It was a wonderful day.", f"{f.name} said, \"That was the best day ever!\"",
                         "They laughed and played until the stars came out."]))
    return s


def _fear(rng, c, f, place):
    p = c.p
    thing = rng.choice(["the dark", "the big dog next door", "the deep water", "the loud thunder",
                        "the tall slide", "the old barn"])
    s = [f"{c.name} was afraid of {thing}."]
    s.append(f"Every time {p['subj']} saw {thing}, {p['subj']} wanted to run away.")
    s.append(f"One day, {p['pos']} friend {f.name} the {f.kind} said, \"Do not be scared. I will stay with you.\"")
    s.append(f"{c.name} held {f.name}'s hand. {p['Subj']} took a deep breath.")
    s.append(f"Slowly, {c.name} went closer. It was not so bad after all!")
    s.append(rng.choice([f"{c.name} felt brave and {rng.choice(FEELINGS_GOOD)}.",
                         f"\"I did it!\" {c.name} said with a big smile.",
                         f"After that day, {c.name} was not afraid of {thing} anymore."]))
    return s


def _making(rng, c, f, place):
    p = c.p
    thing, steps, end = rng.choice([
        ("a cake", ["mixed flour and eggs", "put the cake in the oven", "added pink frosting"],
         "The cake was sweet and soft."),
        ("a snowman", ["rolled a big ball of snow", "put a small ball on top", "gave it a carrot nose"],
         "The snowman looked very funny."),
        ("a sand castle", ["dug in the wet sand", "made four tall towers", "put a shell on the top"],
         "The sand castle was the biggest on the beach."),
        ("a bird house", ["found some old wood", "put the pieces together", "painted it blue"],
         "Soon a little bird came to live in it."),
        ("a card for mom", ["folded a piece of paper", "drew a big heart", "wrote a kind word"],
         "Mom loved the card so much."),
    ])
    s = [f"{c.name} wanted to make {thing}. {p['Subj']} asked {p['pos']} friend {f.name} the {f.kind} to help."]
    s.append(f"First, they {steps[0]}. Then they {steps[1]}.")
    if rng.random() < 0.5:
        s.append(f"\"Oops!\" said {f.name}. Something went wrong, and they had to start again.")
        s.append(f"{c.name} did not give up. \"We can do it,\" {p['subj']} said.")
    s.append(f"At last, they {steps[2]}.")
    s.append(end)
    s.append(rng.choice([f"{c.name} and {f.name} were very {rng.choice(FEELINGS_GOOD)}.",
                         "They worked together, and that made it even better.",
                         f"\"Let us make another one tomorrow,\" said {f.name}."]))
    return s


PLOTS = [_lost_and_found, _sharing, _helping, _weather, _fear, _making]


def story(rng: random.Random) -> str:
    c = Character(rng)
    f = Character(rng, avoid={c.name})
    place = rng.choice(PLACES)
    sents = _intro(rng, c) + rng.choice(PLOTS)(rng, c, f, place)
    return " ".join(sents)


def stories(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [story(rng) for _ in range(n)]


if __name__ == "__main__":
    import sys

    for s in stories(int(sys.argv[1]) if len(sys.argv) > 1 else 3, seed=1):
        print(s, end="\n\n")
