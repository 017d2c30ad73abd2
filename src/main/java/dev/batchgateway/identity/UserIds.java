package dev.batchgateway.identity;

import java.util.OptionalLong;
import java.util.regex.Pattern;

/** A user id as it appears in a path or a query: decimal digits of a number from 1 to 2^63−1, nothing else. */
public final class UserIds {

    private static final Pattern DIGITS = Pattern.compile("[0-9]{1,19}");
    private static final int SHOWN_CHARS = 64;

    private UserIds() {}

    /** The id the text names, or empty when it names none (signs, spaces, 0, beyond 2^63−1). */
    public static OptionalLong parse(String text) {
        if (text != null && DIGITS.matcher(text).matches()) {
            try {
                long user = Long.parseLong(text);
                if (user >= 1) {
                    return OptionalLong.of(user);
                }
            } catch (NumberFormatException beyondLong) {
                // the same answer as any other bad id
            }
        }
        return OptionalLong.empty();
    }

    /** Why the text is refused, echoing at most its first {@value #SHOWN_CHARS} characters. */
    public static String refusal(String text) {
        String shown = text.length() <= SHOWN_CHARS ? text : text.substring(0, SHOWN_CHARS) + "…";
        return "user_id must be an integer from 1 to " + Long.MAX_VALUE + ", was '" + shown + "'";
    }
}
