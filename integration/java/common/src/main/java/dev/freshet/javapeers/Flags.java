package dev.freshet.javapeers;

import java.util.HashMap;
import java.util.Map;

/** Flags parses "--name value" pairs and reports unknown or missing ones. */
public final class Flags {
    private final Map<String, String> values = new HashMap<>();

    public Flags(String[] args, Map<String, String> defaults) {
        values.putAll(defaults);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value, got " + a);
            }
            String name = a.substring(2);
            if (!defaults.containsKey(name)) {
                throw new IllegalArgumentException("unknown flag --" + name + "; known: " + defaults.keySet());
            }
            values.put(name, args[++i]);
        }
    }

    public String get(String name) {
        String v = values.get(name);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("flag --" + name + " is required");
        }
        return v;
    }

    public String optional(String name) {
        return values.get(name);
    }

    public long getLong(String name) {
        return Long.parseLong(get(name));
    }
}
