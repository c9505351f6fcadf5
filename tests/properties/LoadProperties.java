// Loads a properties file exactly as Kafka does (Properties.load(InputStream), ISO-8859-1)
// and prints it as tab-separated escaped lines, so the test compares Java's view, not ours.
import java.io.FileInputStream;
import java.util.Properties;
import java.util.TreeSet;

public class LoadProperties {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        StringBuilder out = new StringBuilder();
        for (String key : new TreeSet<>(props.stringPropertyNames())) {
            out.append(escape(key)).append('\t').append(escape(props.getProperty(key))).append('\n');
        }
        System.out.print(out);
    }

    // Every character outside printable ASCII as \\uXXXX: the output is ASCII, whatever the locale.
    private static String escape(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c >= 0x20 && c < 0x7f && c != '\\') b.append(c);
            else b.append(String.format("\\u%04x", (int) c));
        }
        return b.toString();
    }
}
