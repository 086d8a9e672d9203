"""The password policy, checked whenever a password is set (:func:`check`):

- at least :data:`MIN_LENGTH` (10) characters, and not only spaces;
- not the user's name, nor holding it (case-insensitive; for names of 4 characters or more,
  so that a user ``bo`` may still have a ``b`` and an ``o`` in theirs);
- not one character repeated, and not one of :data:`COMMON` (case-insensitive).

Why 10: NIST SP 800-63B asks for at least 8 characters and a check against passwords known
to be common; most passwords in leaked lists are 8 or 9 characters long, so 10 puts all of
those out of reach, while a passphrase ("correct horse") is still easy to type. No rules on
kinds of characters: they make passwords harder to remember, not to guess.

:data:`COMMON` holds the most common passwords of 10 characters or more in public lists of
leaked passwords (shorter ones are refused by their length already).
"""

from __future__ import annotations

MIN_LENGTH = 10
COMMON = frozenset(
    """
    1234567890 0123456789 0987654321 9876543210 12345678910 1234567891 123456789a
    1234567890q 123456789q 1111111111 0000000000 1212121212 1231231231 1234512345
    123123123123 112233445566 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx3edc 1qazxsw23edc
    q1w2e3r4t5 q1w2e3r4t5y6 a1b2c3d4e5 zaq12wsxcde3 qwertyuiop qwerty1234 qwerty12345
    qwerty123456 qwertyuiop1 asdfghjkl1 asdfghjkl; zxcvbnm123 qazwsxedc123 qazwsxedcrfv
    123qweasdzxc qweasdzxc123 1qaz2wsx3e abcdefghij abcdefg123 abc1234567 abcd123456
    password10 password11 password12 password123 password1234 password12345 password!!
    password01 passw0rd123 p@ssw0rd123 p@ssword123 password2020 password2021 password2022
    password2023 password2024 password2025 password2026 passwordpassword mypassword1
    iloveyou12 iloveyou123 iloveyou1234 princess123 sunshine123 football123 baseball123
    basketball superman123 starwars123 pokemon123 michael123 jennifer123 charlie123
    letmein123 welcome123 welcome1234 welcome2024 welcome2025 welcome2026 changeme123
    administrator admin12345 admin123456 adminadmin root123456 trustno123 master1234
    monkey1234 dragon1234 shadow1234 computer12 internet12 whatever12 football1
    liverpool1 chelsea123 manchester arsenal123 qwerty123! 1q2w3e4r5t! 123456789! 1234567890!
    correcthorsebatterystaple fewclick123 fewclick2026 annotation annotation1
    """.split()
)


class PasswordError(ValueError):
    """A password the policy refuses, said in words."""


def check(name: str, password: str) -> None:
    """A :class:`PasswordError` naming the first rule ``password`` breaks for the user
    ``name``; nothing when it passes."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password has at least {MIN_LENGTH} characters, got {len(password)}")
    if not password.strip():
        raise PasswordError("a password of only spaces is refused")
    folded, user = password.casefold(), name.strip().casefold()
    if folded == user or (len(user) >= 4 and user in folded):
        raise PasswordError("a password may not be or hold the user name")
    if len(set(folded)) == 1:
        raise PasswordError("a password of one character repeated is refused")
    if folded in COMMON:
        raise PasswordError("that password is too common: it is on every list of guesses")
